import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startWorkerProcess } from "../src/index.ts";
import { CliProcess, TASKS, startWorker } from "./cli-process.ts";
import { block, slow, whoAmI } from "./fixtures/cli-tasks.ts";

describe("celery-ts worker (CLI)", { timeout: 90_000 }, () => {
  let dir: string;
  let url: string;
  let client: Client;
  const processes: CliProcess[] = [];
  const start = (args: string[]): CliProcess => {
    const cli = startWorker(url, args);
    processes.push(cli);
    return cli;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "celery-ts-cli-"));
    url = `sqlite:///${join(dir, "queue.db")}`;
    client = createClient({ broker: url, backend: url });
  });
  afterEach(async () => {
    await client.close();
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs tasks in several processes; one that blocks its event loop stalls none of the others", async () => {
    const worker = start(["--processes", "2", "--concurrency", "1"]);
    await worker.waitForLog("worker ready");
    // Blocks for 12 s once started: the quick tasks have that long on a loaded machine.
    const blocked = await client.task(block).delay(12_000);
    const deadline = Date.now() + 20_000;
    while ((await blocked.status()) !== "STARTED" && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await blocked.status()).toBe("STARTED");
    const quick = await Promise.all(Array.from({ length: 20 }, () => client.task(whoAmI).delay()));
    const pids = await Promise.all(quick.map((r) => r.get({ timeout: 10 })));
    expect(await blocked.status()).not.toBe("SUCCESS");
    const blockerPid = await blocked.get({ timeout: 40 });
    expect(new Set(pids).size).toBe(1);
    expect(pids[0]).not.toBe(blockerPid);
  }, 90_000);

  it("restarts a worker process that dies, and keeps running tasks", async () => {
    const worker = start(["--processes", "2"]);
    const first = await worker.waitForLog("worker process started");
    await worker.waitForLog("worker ready");
    const seen = worker.lines.length;
    process.kill(first.pid as number, "SIGKILL");
    const died = await worker.waitForLog("worker process died; restarting it", seen);
    expect(died.pid).toBe(first.pid);
    const restarted = await worker.waitForLog("worker process started", seen);
    expect(restarted.slot).toBe(first.slot);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => client.task(whoAmI).delay()),
    );
    await Promise.all(results.map((r) => r.get({ timeout: 15 })));
  }, 90_000);

  it("on SIGTERM lets a running task finish, then exits 0", async () => {
    const worker = start(["--processes", "1"]);
    await worker.waitForLog("worker ready");
    const result = await client.task(slow).delay(1_000);
    while ((await result.status()) !== "STARTED") await new Promise((r) => setTimeout(r, 20));
    worker.child.kill("SIGTERM");
    expect(await worker.exited).toBe(0);
    expect(await result.get({ timeout: 1 })).toBe("finished");
  }, 30_000);

  it("stops all its processes on SIGTERM and exits 0", async () => {
    const worker = start(["--processes", "2"]);
    await worker.waitForCount("worker ready", 2);
    worker.child.kill("SIGTERM");
    expect(await worker.exited).toBe(0);
    expect(worker.count("worker stopped")).toBe(2);
  }, 90_000); // two node processes start, then stop: slow on a loaded machine, never timed

  it("exits with a clear error for a tasks module that cannot be loaded", async () => {
    const cli = new CliProcess(["worker", "--app", join(dir, "missing.ts"), "--broker", url]);
    processes.push(cli);
    expect(await cli.exited).toBe(78);
    expect(cli.stderr).toMatch(/celery-ts: .*could not import the tasks module .*missing\.ts/);
  }, 30_000);

  it("exits with a clear error for an unknown broker scheme", async () => {
    const cli = startWorker("kafka://127.0.0.1", ["--processes", "2"]);
    processes.push(cli);
    expect(await cli.exited).toBe(78);
    expect(cli.stderr).toMatch(/unknown URL scheme "kafka:\/\/"/);
  }, 30_000);

  it("checks that the broker can be reached before it starts any process", async () => {
    const cli = startWorker(`sqlite:///${join(dir, "no-such-folder", "queue.db")}`, [
      "--processes",
      "2",
    ]);
    processes.push(cli);
    expect(await cli.exited).toBe(78);
    expect(cli.stderr).toMatch(/no-such-folder/);
    expect(cli.count("worker process started")).toBe(0);
  }, 30_000);

  it("refuses bad option values", async () => {
    const timeout = startWorker(url, ["--shutdown-timeout", "soon"]);
    const format = startWorker(url, ["--log-format", "xml"]);
    processes.push(timeout, format);
    expect(await timeout.exited).toBe(1);
    expect(timeout.stderr).toMatch(/--shutdown-timeout takes a number of seconds, not "soon"/);
    expect(await format.exited).toBe(1);
    expect(format.stderr).toMatch(/--log-format is pretty or json, not "xml"/);
  }, 30_000); // starting Node processes takes seconds on a loaded machine

  it("runs as a child process of an app with startWorkerProcess, and stops on stop()", async () => {
    const worker = startWorkerProcess({ app: TASKS, broker: url, backend: url });
    try {
      expect(await (await client.task(whoAmI).delay()).get({ timeout: 20 })).toBe(worker.pid);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  }, 30_000);

  it("prints its usage for --help and an unknown command", async () => {
    const help = new CliProcess(["--help"]);
    const unknown = new CliProcess(["serve"]);
    processes.push(help, unknown);
    expect(await help.exited).toBe(0);
    expect(await unknown.exited).toBe(1);
    expect(unknown.stderr).toMatch(/unknown command "serve"[\s\S]*Usage: celery-ts worker/);
  }, 30_000);
});
