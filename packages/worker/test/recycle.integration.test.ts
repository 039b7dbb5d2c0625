import { describe, expect, it } from "vitest";
import { useCliRun } from "./cli-process.ts";
import { work } from "./fixtures/cli-tasks.ts";

describe("recycled worker processes (CLI)", () => {
  const cli = useCliRun("recycle");
  /** The runs the `work` task logged ("<i> <pid>"), one per completed run. */
  const runs = () => cli.logLines().map(([i, pid]) => ({ i: i!, pid: pid! }));

  it("--max-tasks-per-child replaces each process after n tasks; every task runs exactly once", async () => {
    const worker = cli.worker(
      ["--processes", "2", "--concurrency", "3", "--prefetch", "6", "--max-tasks-per-child", "5"],
      { CELERY_TS_TEST_LOG: cli.log },
    );
    await worker.waitForCount("worker ready", 2);
    const count = 30;
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) => cli.client.task(work).delay(i)),
    );
    const values = await Promise.all(results.map((r) => r.get({ timeout: 60 })));
    expect(values).toEqual(Array.from({ length: count }, (_, i) => i * 2));

    const done = runs();
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
    const worker = cli.worker(
      ["--processes", "1", "--concurrency", "1", "--max-memory-per-child", "1"],
      { CELERY_TS_TEST_LOG: cli.log },
    );
    await worker.waitForLog("worker ready");
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => cli.client.task(work).delay(i)),
    );
    await Promise.all(results.map((r) => r.get({ timeout: 60 })));
    const done = runs();
    expect(done.map((r) => r.i).sort()).toEqual([0, 1, 2, 3]);
    expect(new Set(done.map((r) => r.pid)).size).toBe(4);
    const retiring = await worker.waitForLog(
      "retiring this worker process; running tasks finish first",
    );
    expect(retiring).toMatchObject({ reason: "max-memory", tasks: 1 });
    expect(retiring.rssKiB).toBeGreaterThan(1);
  }, 120_000);

  it("refuses a --max-tasks-per-child that is not a whole number", async () => {
    const worker = cli.worker(["--max-tasks-per-child", "0"]);
    expect(await worker.exited).toBe(1);
    expect(worker.stderr).toMatch(
      /--max-tasks-per-child takes a whole number of 1 or more, not "0"/,
    );
  }, 30_000);
});
