import { defineTask, isCeleryTsError } from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
// Not yet devDependencies of this package: imported from the workspace by path.
import { createClient } from "@celery-ts/client";
import { createWorker, type Worker } from "@celery-ts/worker";
import { startWorker, type CliProcess } from "../../worker/test/cli-process.ts";
import { whoAmI } from "../../worker/test/fixtures/cli-tasks.ts";
import { captureLogger } from "./support/capture-logger.ts";
import { freePort, PrivateRedis } from "./support/private-redis.ts";
import { until } from "./support/redis.ts";

// A worker started while its broker is down: it waits for it, as Celery does
// (broker_connection_retry_on_startup), unless told to fail at once. Each test has a
// redis-server of its own on a free port, started late or never.
describe("a worker started before its Redis", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });
  const lateServer = async () => {
    const server = new PrivateRedis(await freePort(), {});
    cleanups.push(() => server.stop());
    return server;
  };
  const attemptLine = (port: number) =>
    new RegExp(
      `^cannot connect to the broker at redis://127\\.0\\.0\\.1:${port}/0 \\(attempt (\\d+)\\): .*; trying again in \\d+\\.\\d s$`,
    );

  it("keeps trying with backoff, logging each attempt, and runs tasks once Redis is up", async () => {
    const server = await lateServer();
    const logger = captureLogger();
    const add = defineTask("startup.add", (a: number, b: number) => a + b);
    const worker: Worker = createWorker({
      broker: server.url,
      backend: server.url,
      tasks: [add],
      logger,
    });
    cleanups.push(() => worker.stop());
    let started = false;
    const starting = worker.start().then(() => (started = true));
    const attempts = () => logger.lines.filter((l) => attemptLine(server.port).test(l.message));
    await until(() => attempts().length >= 2, 30_000, "two failed attempts logged");
    expect(started).toBe(false);
    expect(attempts().map((l) => l.fields?.attempt)).toEqual([1, 2]);
    expect(attempts()[0]?.level).toBe("warn");

    await server.restart();
    await starting;
    expect(logger.text("info")).toMatch(
      new RegExp(`connected to the broker at redis://127\\.0\\.0\\.1:${server.port}/0 \\(attempt`),
    );
    const client = createClient({ broker: server.url, backend: server.url });
    cleanups.push(() => client.close());
    expect(await (await client.task(add).delay(2, 3)).get({ timeout: 10 })).toBe(5);
  }, 60_000);

  it("fails at once with brokerConnectionRetryOnStartup: false, saying what to do", async () => {
    const server = await lateServer();
    const worker = createWorker({
      broker: server.url,
      tasks: [],
      brokerConnectionRetryOnStartup: false,
    });
    cleanups.push(() => worker.stop());
    const error = await worker.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(
        `cannot connect to the broker at redis://127\\.0\\.0\\.1:${server.port}/0: .*not retrying.*brokerConnectionRetryOnStartup`,
      ),
    );
  }, 30_000);

  describe("celery-ts worker", () => {
    const run = (url: string, args: string[]): CliProcess => {
      const cli = startWorker(url, args);
      cleanups.push(() => cli.stop());
      return cli;
    };

    it("with several processes, waits for Redis, then its children run tasks", async () => {
      const server = await lateServer();
      const cli = run(server.url, ["--processes", "2", "--concurrency", "2"]);
      const attempts = () => cli.lines.filter((l) => attemptLine(server.port).test(String(l.msg)));
      await until(() => attempts().length >= 2, 30_000, "two failed attempts logged");
      expect(cli.count("worker ready")).toBe(0);
      await server.restart();
      await cli.waitForCount("worker ready", 2, 60_000);
      const client = createClient({ broker: server.url, backend: server.url });
      cleanups.push(() => client.close());
      const pid = await (await client.task(whoAmI).delay()).get({ timeout: 20 });
      expect(typeof pid).toBe("number");
    }, 120_000);

    it("with --broker-connection-retry-on-startup off, exits with the reason", async () => {
      const server = await lateServer();
      const cli = run(server.url, [
        "--processes",
        "1",
        "--broker-connection-retry-on-startup",
        "off",
      ]);
      expect(await cli.exited).toBe(1);
      expect(cli.stderr).toMatch(
        new RegExp(
          `celery-ts: .*cannot connect to the broker at redis://127\\.0\\.0\\.1:${server.port}/0: .*not retrying`,
        ),
      );
    }, 60_000);
  });
});
