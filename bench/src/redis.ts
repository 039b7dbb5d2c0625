// Redis, side by side: celery-ts, BullMQ and celery-node on the same server in one run, each on a
// database of its own that is flushed before every scenario. Processing runs in-process for all
// three, so each is measured without process start-up.
import { createClient } from "@celery-ts/client";
import { defineTask, silentLogger, type Logger } from "@celery-ts/core";
import { createWorker } from "@celery-ts/worker";
import { Queue, QueueEvents, Worker as BullWorker } from "bullmq";
import * as celeryNode from "celery-node";
import { Redis } from "ioredis";
import type { Section } from "./report.ts";
import { percentile, perSecond, timed, until } from "./stats.ts";

const HOST = "127.0.0.1";
const PORT = 6379;
const DB = 9;
const URL = `redis://${HOST}:${PORT}/${DB}`;
const LATENCY_ROUNDS = 500;

const noop = defineTask("bench.noop", (n: number) => n);

async function flush(): Promise<void> {
  const redis = new Redis({ host: HOST, port: PORT, db: DB });
  await redis.flushdb();
  redis.disconnect();
}

/** A logger that counts finished tasks: the worker logs "task succeeded" once the result is stored. */
function countingLogger(): Logger & { succeeded: number } {
  const logger = {
    ...silentLogger,
    succeeded: 0,
    info(message: string) {
      if (message === "task succeeded") logger.succeeded++;
    },
  };
  return logger;
}

interface Figures {
  enqueueOne?: number;
  enqueueBulk?: number;
  process50?: number;
  process1?: number;
  latency?: number[];
}

const chunks = (total: number, size: number): number[][] =>
  Array.from({ length: Math.ceil(total / size) }, (_, c) =>
    Array.from({ length: Math.min(size, total - c * size) }, (_, i) => c * size + i),
  );

async function celeryTs(total: number): Promise<Figures> {
  const figures: Figures = {};
  const send = async (count: number, bulk: boolean): Promise<number> => {
    const client = createClient({ broker: URL });
    const handle = client.task(noop);
    await client.connect();
    const ms = await timed(async () => {
      if (bulk)
        for (const chunk of chunks(count, 1_000))
          await Promise.all(chunk.map((i) => handle.delay(i)));
      else for (let i = 0; i < count; i++) await handle.delay(i);
    });
    await client.close();
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
    const logger = countingLogger();
    const worker = createWorker({ broker: URL, backend: URL, tasks: [noop], concurrency, logger });
    const ms = await timed(async () => {
      await worker.start();
      await until(() => logger.succeeded, count);
    });
    await worker.stop();
    figures[concurrency === 50 ? "process50" : "process1"] = perSecond(count, ms);
  }

  await flush();
  const worker = createWorker({ broker: URL, backend: URL, tasks: [noop], concurrency: 1 });
  await worker.start();
  const client = createClient({ broker: URL, backend: URL });
  const handle = client.task(noop);
  figures.latency = [];
  for (let i = 0; i < LATENCY_ROUNDS; i++) {
    figures.latency.push(await timed(async () => (await handle.delay(i)).get({ timeout: 30 })));
  }
  await client.close();
  await worker.stop();
  return figures;
}

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

/** celery-node has no concurrency setting and its delay() does not await the publish. */
async function celeryNodeFigures(total: number): Promise<Figures> {
  const figures: Figures = {};
  await flush();
  const producer = createClient({ broker: URL });
  const handle = producer.task(noop);
  for (const chunk of chunks(total, 1_000)) await Promise.all(chunk.map((i) => handle.delay(i)));
  await producer.close();
  let done = 0;
  const worker = celeryNode.createWorker(URL, URL);
  worker.register("bench.noop", (n: number) => {
    done++;
    return n;
  });
  figures.process50 = perSecond(
    total,
    await timed(async () => {
      void worker.start();
      await until(() => done, total);
    }),
  );

  await flush();
  const client = celeryNode.createClient(URL, URL);
  figures.latency = [];
  for (let i = 0; i < LATENCY_ROUNDS / 5; i++) {
    figures.latency.push(
      await timed(() => client.createTask("bench.noop").applyAsync([i]).get(30_000, 1)),
    );
  }
  await Promise.all([client.disconnect(), worker.disconnect()]);
  return figures;
}

function cell(
  value: number | undefined,
  base: number | undefined,
  unit: string,
  lowerIsBetter = false,
): string {
  if (value === undefined) return "n/a";
  const text = unit === "ms" ? `${value.toFixed(2)} ms` : `${value.toLocaleString("en")} ${unit}`;
  if (base === undefined || base === 0) return text;
  const ratio = lowerIsBetter ? base / value : value / base;
  return `${text} (${ratio.toFixed(2)}×)`;
}

export async function redisSection(total: number): Promise<Section> {
  const ours = await celeryTs(total);
  const theirs = await bull(total);
  const node = await celeryNodeFigures(total / 4);
  const systems = [ours, theirs, node];
  const p = (f: Figures, q: number): number | undefined =>
    f.latency ? percentile(f.latency, q) : undefined;
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
its delay() does not wait for the broker, and its latency is measured over ${LATENCY_ROUNDS / 5} rounds.`,
  };
}
