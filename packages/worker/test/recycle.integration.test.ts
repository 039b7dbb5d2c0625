import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliProcess, startWorker } from "./cli-process.ts";
import { work } from "./fixtures/cli-tasks.ts";

/** "<i> <pid>" lines the `work` task appended, one per completed run. */
function runs(log: string): { i: number; pid: number }[] {
  return readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [i, pid] = line.split(" ").map(Number);
      return { i: i!, pid: pid! };
    });
}

describe("recycled worker processes (CLI)", () => {
  let dir: string;
  let url: string;
  let log: string;
  let client: Client;
  const processes: CliProcess[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "celery-ts-recycle-"));
    url = `sqlite:///${join(dir, "queue.db")}`;
    log = join(dir, "runs.log");
    writeFileSync(log, "");
    client = createClient({ broker: url, backend: url });
  });
  // Waits for the workers to exit: a process that is still starting (a replacement of a retired
  // one) stops once it is up, which took 3 to 10 s on a loaded machine; the default 10 s hook
  // bound failed, and the hook, still running, then removed the next test's directory.
  afterEach(async () => {
    const own = dir;
    await client.close();
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    rmSync(own, { recursive: true, force: true });
  }, 60_000);

  it("--max-tasks-per-child replaces each process after n tasks; every task runs exactly once", async () => {
    const worker = startWorker(
      url,
      ["--processes", "2", "--concurrency", "3", "--prefetch", "6", "--max-tasks-per-child", "5"],
      { CELERY_TS_TEST_LOG: log },
    );
    processes.push(worker);
    await worker.waitForCount("worker ready", 2);
    const count = 30;
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) => client.task(work).delay(i)),
    );
    const values = await Promise.all(results.map((r) => r.get({ timeout: 60 })));
    expect(values).toEqual(Array.from({ length: count }, (_, i) => i * 2));

    const done = runs(log);
    // Exactly once: no task lost (all 60 there), none run twice (no index repeated).
    expect(done.map((r) => r.i).sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
    const perPid = new Map<number, number>();
    for (const { pid } of done) perPid.set(pid, (perPid.get(pid) ?? 0) + 1);
    expect(Math.max(...perPid.values())).toBeLessThanOrEqual(5);
    expect(perPid.size).toBeGreaterThanOrEqual(count / 5);
    expect(
      worker.count("worker process retiring; starting its replacement"),
    ).toBeGreaterThanOrEqual(count / 5 - 1);
    // Retiring is not dying: no crash restarts.
    expect(worker.count("worker process died; restarting it")).toBe(0);
  }, 120_000);

  it("--max-memory-per-child (KiB) replaces a process once a task leaves it above the limit", async () => {
    // 1 KiB: every process is above it after its first task, so each task gets a fresh process.
    const worker = startWorker(
      url,
      ["--processes", "1", "--concurrency", "1", "--max-memory-per-child", "1"],
      { CELERY_TS_TEST_LOG: log },
    );
    processes.push(worker);
    await worker.waitForLog("worker ready");
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => client.task(work).delay(i)),
    );
    await Promise.all(results.map((r) => r.get({ timeout: 60 })));
    const done = runs(log);
    expect(done.map((r) => r.i).sort()).toEqual([0, 1, 2, 3]);
    expect(new Set(done.map((r) => r.pid)).size).toBe(4);
    const retiring = await worker.waitForLog(
      "retiring this worker process; running tasks finish first",
    );
    expect(retiring).toMatchObject({ reason: "max-memory", tasks: 1 });
    expect(retiring.rssKiB).toBeGreaterThan(1);
  }, 120_000);

  it("refuses a --max-tasks-per-child that is not a whole number", async () => {
    const worker = startWorker(url, ["--max-tasks-per-child", "0"]);
    processes.push(worker);
    expect(await worker.exited).toBe(1);
    expect(worker.stderr).toMatch(
      /--max-tasks-per-child takes a whole number of 1 or more, not "0"/,
    );
  }, 30_000);
});
