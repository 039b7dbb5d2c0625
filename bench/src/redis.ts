// Redis, side by side: celery-ts, BullMQ and celery-node on the same server in one run, each on a
// database of its own that is flushed before every scenario. Processing runs in-process for all
// three, so each is measured without process start-up.
import { Queue, QueueEvents, Worker as BullWorker } from "bullmq";
import { Redis } from "ioredis";
import { celeryNodeFigures } from "./celery-node.ts";
import { celeryTsFigures, type Setup } from "./celery-ts.ts";
import { cell, chunks, LATENCY_ROUNDS, latencyPercentile, type Figures } from "./figures.ts";
import type { Section } from "./report.ts";
import { perSecond, timed, until } from "./stats.ts";

const HOST = "127.0.0.1";
const PORT = 6379;
const DB = 9;
const URL = `redis://${HOST}:${PORT}/${DB}`;
const CELERY = "celery";

async function flush(): Promise<void> {
  const redis = new Redis({ host: HOST, port: PORT, db: DB });
  await redis.flushdb();
  redis.disconnect();
}

/** celery-ts and celery-node on db 9, flushed before every scenario; the queue is "celery". */
export const redisSetup: Setup = {
  broker: URL,
  backend: URL,
  fresh: async () => {
    await flush();
    return CELERY;
  },
};

async function bull(total: number): Promise<Figures> {
  const connection = { host: HOST, port: PORT, db: DB, maxRetriesPerRequest: null };
  const figures: Figures = {};
  const send = async (count: number, bulk: boolean): Promise<number> => {
    const queue = new Queue("bench", { connection });
    await queue.waitUntilReady();
    const ms = await timed(async () => {
      if (bulk) {
        for (const chunk of chunks(count, 1_000)) {
          await queue.addBulk(chunk.map((n) => ({ name: "noop", data: { n } })));
        }
      } else for (let n = 0; n < count; n++) await queue.add("noop", { n });
    });
    await queue.close();
    return perSecond(count, ms);
  };
  await flush();
  figures.enqueueOne = await send(total / 4, false);
  await flush();
  figures.enqueueBulk = await send(total, true);

  for (const [concurrency, count] of [
    [50, total],
    [1, total / 10],
  ] as const) {
    await flush();
    await send(count, true);
    let completed = 0;
    const ms = await timed(async () => {
      const worker = new BullWorker("bench", async (job) => job.data.n as number, {
        connection,
        concurrency,
      });
      worker.on("completed", () => completed++);
      await until(() => completed, count);
      await worker.close();
    });
    figures[concurrency === 50 ? "process50" : "process1"] = perSecond(count, ms);
  }

  await flush();
  const worker = new BullWorker("bench", async (job) => job.data.n as number, {
    connection,
    concurrency: 1,
  });
  const queue = new Queue("bench", { connection });
  const events = new QueueEvents("bench", { connection });
  await events.waitUntilReady();
  figures.latency = [];
  for (let n = 0; n < LATENCY_ROUNDS; n++) {
    figures.latency.push(
      await timed(async () => (await queue.add("noop", { n })).waitUntilFinished(events)),
    );
  }
  await Promise.all([worker.close(), queue.close(), events.close()]);
  return figures;
}

export async function redisSection(total: number): Promise<Section> {
  const ours = await celeryTsFigures(total, redisSetup);
  const theirs = await bull(total);
  const node = await celeryNodeFigures(total / 4, redisSetup);
  const systems = [ours, theirs, node];
  const p = latencyPercentile;
  const row = (
    scenario: string,
    pick: (f: Figures) => number | undefined,
    unit: string,
    lowerIsBetter = false,
  ) => ({
    scenario,
    cells: systems.map((f) => cell(pick(f), pick(theirs), unit, lowerIsBetter)),
  });
  return {
    title: `Redis: celery-ts, BullMQ 6.7 and celery-node 0.5 on one Redis (${total} no-op tasks)`,
    columns: ["celery-ts", "BullMQ", "celery-node"],
    rows: [
      row(`enqueue one by one (${total / 4}, each awaited)`, (f) => f.enqueueOne, "/s"),
      row(`enqueue in bulk (${total}, batches of 1,000)`, (f) => f.enqueueBulk, "/s"),
      row(`process, concurrency 50 (${total} queued)`, (f) => f.process50, "/s"),
      row(`process, concurrency 1 (${total / 10} queued)`, (f) => f.process1, "/s"),
      row("round trip p50 (send, then await the result)", (f) => p(f, 50), "ms", true),
      row("round trip p99", (f) => p(f, 99), "ms", true),
    ],
    notes: `Ratios are to BullMQ in the same run (above 1× is better, for latency too). celery-ts stores
results in Celery's layout and acknowledges after storing; its bulk enqueue is concurrent delay()
calls. celery-node has no concurrency setting (its column under "concurrency 50" is its only mode),
its delay() does not wait for the broker, and its latency is measured over ${LATENCY_ROUNDS / 5} rounds.

Where the time goes (\`node --cpu-prof\` on a worker draining 20,000 tasks at concurrency 50): the
worker is CPU-bound, not waiting on Redis. Garbage collection takes about a fifth, socket writes
about a sixth, and JSON (kombu's envelope, Celery's body and result, written in Python's byte
format) about a tenth. Each task costs three round trips (take, result SET+PUBLISH, ack), where
BullMQ's moveToFinished script completes a job and fetches the next in one. Done so far: a publish
is one LPUSH (the kombu binding once per queue), commands issued together share one write
(auto-pipelining), takes come in batches, JSON skips work it does not need. Next: one script that
stores the result, acknowledges and takes the next message when broker and backend share a
Redis, and fewer allocations per task.`,
  };
}
