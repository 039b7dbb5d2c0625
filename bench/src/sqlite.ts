// SQLite, the embedded default: end to end through real `celery-ts worker` processes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { startWorkerProcess } from "@celery-ts/worker";
import type { Section } from "./report.ts";
import { percentile, perSecond, timed } from "./stats.ts";
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

/** Sends `total` tasks one by one, then waits for every result. */
async function endToEnd(
  processes: number,
  total: number,
): Promise<{ enqueue: number; e2e: number }> {
  return withSetup(processes, async (client) => {
    const handle = client.task(noop);
    const results = [];
    const started = performance.now();
    for (let i = 0; i < total; i++) results.push(await handle.delay(i));
    const enqueued = performance.now();
    await Promise.all(results.map((r) => r.get({ timeout: 300 })));
    return {
      enqueue: perSecond(total, enqueued - started),
      e2e: perSecond(total, performance.now() - started),
    };
  });
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
  const one = await endToEnd(1, total);
  const four = await endToEnd(4, total);
  const samples = await roundTrips(500);
  return {
    title: `SQLite (embedded default): ${total} no-op tasks, worker concurrency 50 per process`,
    columns: ["celery-ts"],
    rows: [
      { scenario: "enqueue, one by one (awaited delay())", cells: [`${one.enqueue} tasks/s`] },
      { scenario: "end to end, 1 producer, 1 worker process", cells: [`${one.e2e} tasks/s`] },
      { scenario: "end to end, 1 producer, 4 worker processes", cells: [`${four.e2e} tasks/s`] },
      {
        scenario: "round trip p50 (send, then await the result)",
        cells: [`${percentile(samples, 50).toFixed(2)} ms`],
      },
      { scenario: "round trip p99", cells: [`${percentile(samples, 99).toFixed(2)} ms`] },
    ],
    notes: `Every send, claim, result and ack is a write transaction on one file, and SQLite has one writer
at a time: more worker processes than cores add lock contention rather than throughput for no-op
tasks. They pay off when tasks do real work (or block their event loop).`,
  };
}
