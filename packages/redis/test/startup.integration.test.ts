import { defineTask, isCeleryTsError } from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
// Not yet devDependencies of this package: imported from the workspace by path.
import { createClient } from "@celery-ts/client";
import { createBeat, createWorker, type Worker } from "@celery-ts/worker";
import { CliProcess, startWorker } from "../../worker/test/cli-process.ts";
import { whoAmI } from "../../worker/test/fixtures/cli-tasks.ts";
import { captureLogger } from "./support/capture-logger.ts";
import { PrivateRedis } from "./support/private-redis.ts";
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
    const server = await PrivateRedis.late();
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

  it("beat.stop() while beat waits for its broker at startup ends the wait: start() and stop() resolve", async () => {
    const server = await lateServer();
    const logger = captureLogger();
    const beat = createBeat({ broker: server.url, entries: [], logger });
    const starting = beat.start();
    await until(
      () => logger.lines.some((l) => attemptLine(server.port).test(l.message)),
      30_000,
      "a failed attempt logged",
    );
    // Without the stop, the wait goes on as long as the broker is down (here: for good).
    await beat.stop();
    await starting;
    expect(beat.isLeader).toBe(false);
  }, 20_000);

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

    it("with -B, a SIGTERM while beat waits for the broker stops it cleanly (exit 0)", async () => {
      const server = await lateServer();
      const cli = run(server.url, ["--processes", "1", "-B"]);
      const attempts = () => cli.lines.filter((l) => attemptLine(server.port).test(String(l.msg)));
      await until(() => attempts().length >= 1, 30_000, "a failed attempt logged");
      expect(await cli.stop()).toBe(0);
    }, 60_000);

    it("celery-ts beat: a SIGTERM while it waits for the broker exits 0; --broker-connection-retry-on-startup off exits 1 with the reason", async () => {
      const server = await lateServer();
      const beat = (args: string[]) => {
        const cli = new CliProcess([
          "beat",
          "--broker",
          server.url,
          "--log-format",
          "json",
          ...args,
        ]);
        cleanups.push(() => cli.stop());
        return cli;
      };
      const waiting = beat([]);
      await until(
        () => waiting.lines.some((l) => attemptLine(server.port).test(String(l.msg))),
        30_000,
        "a failed attempt logged",
      );
      expect(await waiting.stop()).toBe(0);
      const failing = beat(["--broker-connection-retry-on-startup", "off"]);
      expect(await failing.exited).toBe(1);
      expect(failing.stderr).toMatch(
        new RegExp(
          `celery-ts: .*cannot connect to the broker at redis://127\\.0\\.0\\.1:${server.port}/0: .*not retrying`,
        ),
      );
    }, 60_000);

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
