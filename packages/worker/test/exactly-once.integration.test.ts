import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import { expect, it } from "vitest";
import { startWorker } from "./cli-process.ts";
import { work } from "./fixtures/cli-tasks.ts";

// Two workers share one SQLite file; one is killed with SIGKILL mid-batch. Every task must still
// finish, and the backend must hold exactly one right result per task.
it("finishes a 1,000-task batch exactly once as the backend sees it when a worker is SIGKILLed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "celery-ts-exactly-once-"));
  const log = join(dir, "completed.log");
  writeFileSync(log, "");
  // A short lease, so the killed worker's messages come back within the test; renewed every third
  // of it, 5 s leaves a loaded machine seconds of slack (at 1.5 s, a late renewal let the victim
  // take back and run again a task it still held).
  const url = `sqlite:///${join(dir, "queue.db")}?visibility_timeout=5`;
  const env = { CELERY_TS_TEST_LOG: log };
  const client = createClient({ broker: url, backend: url });
  const victim = startWorker(url, ["--processes", "1", "--concurrency", "10"], env);
  const survivor = startWorker(url, ["--processes", "1", "--concurrency", "10"], env);
  try {
    await Promise.all([victim.waitForLog("worker ready"), survivor.waitForLog("worker ready")]);
    const handle = client.task(work);
    const results = [];
    for (let i = 0; i < 1_000; i++) results.push(await handle.delay(i));

    const completed = (): string[] => readFileSync(log, "utf8").split("\n").filter(Boolean);
    while (completed().length < 300) await new Promise((resolve) => setTimeout(resolve, 10));
    const victimPid = victim.child.pid!;
    victim.child.kill("SIGKILL");
    expect(await victim.exited).toBe(null);

    const values = await Promise.all(results.map((r) => r.get({ timeout: 60 })));
    // The victim's unacknowledged messages came back to the survivor after their lease.
    expect(survivor.lines.some((l) => l.msg === "task started" && l.redelivered === true)).toBe(
      true,
    );
    expect(values).toEqual(Array.from({ length: 1_000 }, (_, i) => i * 2));
    expect(await Promise.all(results.map((r) => r.status()))).toEqual(Array(1_000).fill("SUCCESS"));

    // At-least-once underneath: a task the victim finished but had not yet recorded may run again
    // on the survivor. Only such tasks may appear twice, at most one per slot the victim had.
    const runs = new Map<number, number[]>();
    for (const line of completed()) {
      const [i, pid] = line.split(" ").map(Number) as [number, number];
      runs.set(i, [...(runs.get(i) ?? []), pid]);
    }
    expect(runs.size).toBe(1_000);
    const repeated = [...runs.values()].filter((pids) => pids.length > 1);
    expect(repeated.length).toBeLessThanOrEqual(10);
    for (const pids of repeated) expect(pids).toEqual([victimPid, survivor.child.pid]);
  } finally {
    await client.close();
    await survivor.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
