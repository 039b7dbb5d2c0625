// Fault test: SIGTERM to the whole process group of `celery-ts worker --processes 2` (systemd's
// default, `kill -- -PGID`, GNU timeout). Every worker process gets the signal as well as the
// supervisor; none may count the two as a second signal and drop its task.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AsyncResult } from "@celery-ts/client";
import { createSqliteTransport } from "@celery-ts/sqlite";
import { describe, expect, it } from "vitest";
import { DUPLICATE_WINDOW_MS } from "../../src/internal/stop-signals.ts";
import { type CliProcess, useCliRun } from "../cli-process.ts";
import { long } from "../fixtures/cli-tasks.ts";

describe("fault: SIGTERM to the process group of a multi-process worker", () => {
  // Killed with their group after each test: a test may leave 60 s tasks running.
  const cli = useCliRun("pgroup", { kill: true });
  /** The indexes of the completed runs, from the lines the `long` task appended. */
  const completed = () => cli.logLines().map(([i]) => i!);

  /** A detached worker (its own group) with two processes, each running one task of `ms`. */
  async function twoRunningTasks(
    ms: number,
  ): Promise<{ worker: CliProcess; results: AsyncResult<number>[] }> {
    const worker = cli.worker(
      ["--processes", "2", "--concurrency", "1", "--prefetch", "1", "--shutdown-timeout", "60"],
      { CELERY_TS_TEST_LOG: cli.log },
      { detached: true },
    );
    await worker.waitForCount("worker ready", 2);
    const results = [
      await cli.client.task(long).delay(0, ms),
      await cli.client.task(long).delay(1, ms),
    ];
    await worker.waitForCount("task started", 2);
    return { worker, results };
  }

  it("lets both running tasks finish and acknowledges them; nothing lost or run twice", async () => {
    const runs = 2;
    const figures = { load: 0, lost: 0, runTwice: 0, crashes: 0, forced: 0 };
    for (let run = 0; run < runs; run++) {
      writeFileSync(cli.log, "");
      const { worker, results } = await twoRunningTasks(3_000);
      figures.load += results.length;
      process.kill(-worker.child.pid!, "SIGTERM");
      const code = await worker.exited;
      const done = completed();
      const states = await Promise.all(results.map((r) => r.status()));
      figures.lost += [0, 1].filter((i) => !done.includes(i)).length;
      figures.runTwice += done.length - new Set(done).size;
      figures.crashes += worker.count("worker process died; restarting it");
      figures.forced += worker.count("second signal: exiting without waiting for running tasks");
      expect(code, worker.stderr).toBe(0);
      expect(states).toEqual(["SUCCESS", "SUCCESS"]);
      expect(worker.count("worker stopped")).toBe(2);
      // Acknowledged: nothing waits on the queue, nothing is outstanding to come back later.
      const transport = createSqliteTransport({ path: join(cli.dir, "queue.db") });
      try {
        expect(await transport.depth!("celery")).toBe(0);
        expect(await transport.purge("celery")).toBe(0);
        expect(await transport.deadLetters!("celery")).toEqual([]);
      } finally {
        await transport.close();
      }
    }
    console.log(`[fault] process-group SIGTERM, --processes 2, 3 s tasks, ${runs} runs:`, figures);
    expect(figures).toEqual({ load: 2 * runs, lost: 0, runTwice: 0, crashes: 0, forced: 0 });
  }, 120_000);

  it("a second SIGTERM to the group, later than the first, forces the exit", async () => {
    const { worker } = await twoRunningTasks(60_000);
    process.kill(-worker.child.pid!, "SIGTERM");
    await worker.waitForLog("stopping worker processes; running tasks may finish");
    // Past the declared window in which a second delivery counts as the same signal (counted from
    // the first one's handling, which the log line above follows).
    await new Promise((resolve) => setTimeout(resolve, DUPLICATE_WINDOW_MS + 200));
    const sentAt = Date.now();
    process.kill(-worker.child.pid!, "SIGTERM");
    expect(await worker.exited).toBe(1);
    console.log(`[fault] second group SIGTERM: exited in ${Date.now() - sentAt} ms`);
    expect(worker.count("second signal: killing worker processes now")).toBe(1);
    expect(completed()).toEqual([]);
  }, 120_000);
});
