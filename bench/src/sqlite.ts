// SQLite, the embedded default: end to end through real `celery-ts worker` processes, beside
// plainjob worker processes, in interleaved rounds.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { startWorkerProcess } from "@celery-ts/worker";
import { stopChild } from "./child.ts";
import { doneCount, plainQueue } from "./plainjob.ts";
import type { Section } from "./report.ts";
import { add, cell, MS, RATE, type Samples } from "./samples.ts";
import { QUICK, ROUNDS } from "./servers.ts";
import { percentile, perSecond, timed, until } from "./stats.ts";
import { noop } from "./tasks.ts";

const here = join(import.meta.dirname, "..");

/** A client and a worker on a fresh database file, for the length of `fn`. */
async function withSetup<T>(processes: number, fn: (client: Client) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "celery-ts-bench-"));
  // sqlite:/// plus an absolute path: SQLAlchemy's four slashes.
  const url = `sqlite:///${join(dir, "bench.db")}`;
  const client = createClient({ broker: url, backend: url });
  const worker = startWorkerProcess({
    app: join(here, "src/tasks.ts"),
    broker: url,
    backend: url,
    processes,
    concurrency: 50,
    logLevel: "warn",
  });
  try {
    const handle = client.task(noop);
    const warmUp = await Promise.all(Array.from({ length: 50 }, (_, i) => handle.delay(i)));
    await Promise.all(warmUp.map((r) => r.get({ timeout: 60 })));
    return await fn(client);
  } finally {
    await client.close();
    await worker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sends `total` tasks one by one (each awaited), then waits for every result: tasks per second. */
async function endToEnd(processes: number, total: number): Promise<number> {
  return withSetup(processes, async (client) => {
    const handle = client.task(noop);
    const results = [];
    const started = performance.now();
    for (let i = 0; i < total; i++) results.push(await handle.delay(i));
    await Promise.all(results.map((r) => r.get({ timeout: 300 })));
    return perSecond(total, performance.now() - started);
  });
}

/** plainjob: `processes` worker processes on a fresh file; `total` jobs added one by one. */
async function plainEndToEnd(processes: number, total: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "celery-ts-bench-plainjob-"));
  const file = join(dir, "bench.db");
  const queue = plainQueue(file);
  const workers = Array.from({ length: processes }, () =>
    spawn(process.execPath, [join(here, "src/plainjob.ts"), file], { stdio: "inherit" }),
  );
  try {
    for (let i = 0; i < 50; i++) queue.add("noop", { n: i });
    await until(() => doneCount(queue), 50, 60_000);
    const started = performance.now();
    for (let i = 0; i < total; i++) queue.add("noop", { n: i });
    await until(() => doneCount(queue), total + 50);
    return perSecond(total, performance.now() - started);
  } finally {
    await Promise.all(workers.map((worker) => stopChild(worker)));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function roundTrips(rounds: number): Promise<number[]> {
  return withSetup(1, async (client) => {
    const handle = client.task(noop);
    const samples: number[] = [];
    for (let i = 0; i < rounds; i++) {
      samples.push(await timed(async () => (await handle.delay(i)).get({ timeout: 60 })));
    }
    return samples;
  });
}

export async function sqliteSection(total: number): Promise<Section> {
  const ours: Samples = {};
  const plain: Samples = {};
  for (let r = 0; r < ROUNDS; r++) {
    console.error(`bench: sqlite round ${r + 1} of ${ROUNDS}`);
    for (const processes of [1, 2]) {
      add(ours, `e2e${processes}`, await endToEnd(processes, total));
      add(plain, `e2e${processes}`, await plainEndToEnd(processes, total));
    }
    const samples = await roundTrips(QUICK ? 100 : 500);
    add(ours, "p50", percentile(samples, 50));
    add(ours, "p99", percentile(samples, 99));
  }
  const row = (scenario: string, key: string, unit = RATE) => ({
    scenario,
    cells: [cell(ours[key], plain[key], unit), cell(plain[key], plain[key], unit)],
  });
  return {
    title: `SQLite (embedded default): celery-ts and plainjob 0.0.14, ${total} no-op tasks, ${ROUNDS} interleaved rounds`,
    columns: ["celery-ts (results stored)", "plainjob (no results)"],
    rows: [
      row("end to end, 1 producer, 1 worker process", "e2e1"),
      row("end to end, 1 producer, 2 worker processes", "e2e2"),
      {
        scenario: "round trip p50 (send, then await the result)",
        cells: [cell(ours.p50, undefined, MS), "n/a"],
      },
      { scenario: "round trip p99", cells: [cell(ours.p99, undefined, MS), "n/a"] },
    ],
    notes: `End to end: from the first send to the last result (plainjob: the last job marked done), tasks sent
one by one by a producer in the bench's process (celery-ts: each delay() awaited; plainjob: add()
is synchronous). Medians of ${ROUNDS} interleaved rounds, ± half their range; ratios are to plainjob
(above 1× is better). celery-ts workers are \`celery-ts worker\` processes at concurrency 50 each,
storing every result; plainjob workers run one job at a time, store no result and poll every 10 ms
when idle (its default is 1 s), on node:sqlite through its better-sqlite3 connection shape. SQLite
has one writer at a time: plainjob commits each add, claim and "done" on its own; celery-ts commits
the sends, results and acks of one event-loop turn together, and claims for up to a quarter of its
prefetch at once.`,
  };
}
