// Redis, side by side: celery-ts, BullMQ and Python Celery (prefork) on the Redis of the run
// (CELERY_TS_REDIS_URL, its database), in interleaved rounds. Every worker runs in a process of
// its own, so that its CPU per task and its RSS are its own; each scenario uses a key prefix of
// its own, deleted afterwards (the bench never flushes a database).
import { Queue, QueueEvents, Worker as BullWorker } from "bullmq";
import { createClient, s } from "@celery-ts/client";
import { redisAddress } from "@celery-ts/testing";
import { noopOn, roundTrips, type Setup } from "./celery-ts.ts";
import { nodeWorker } from "./child.ts";
import { chunks } from "./figures.ts";
import { pythonProcessing } from "./python.ts";
import type { Section } from "./report.ts";
import { add, cell, MB, MICROS, MS, RATE, type Samples, type Unit } from "./samples.ts";
import { dropKeys, newPrefix, QUICK, ROUNDS, SERVERS, withPrefix } from "./servers.ts";
import { percentile, perSecond, timed } from "./stats.ts";

export const REDIS_URL = SERVERS.redisUrl;
const QUEUE = "bench";
const BATCH = 1_000;
const LATENCY_ROUNDS = QUICK ? 100 : 500;
/** Tasks each system's producer sends, one by one and in bulk, before the measured rounds. */
const WARM_UP = 1_000;

/** For the sections that need a Redis beside them: one prefix of the run, emptied by fresh(). */
const SETUP_PREFIX = newPrefix();
export const redisSetup: Setup = {
  broker: withPrefix(REDIS_URL, SETUP_PREFIX),
  backend: withPrefix(REDIS_URL, SETUP_PREFIX),
  fresh: async () => {
    await dropKeys(SETUP_PREFIX);
    return "celery";
  },
};

export type System = "celery-ts" | "bullmq";

const bullConnection = () => {
  const { host, port } = redisAddress(REDIS_URL);
  const db = Number(new URL(REDIS_URL).pathname.slice(1) || 0);
  return { host, port, db, maxRetriesPerRequest: null };
};

/** `count` no-op tasks on a fresh prefix: bulk (sendMany / addBulk) or one by one, awaited. */
export async function fill(
  system: System,
  prefix: string,
  count: number,
  bulk: boolean,
): Promise<{ perSecond: number; ids: string[]; cpuUs: number }> {
  const ids: string[] = [];
  /** The producer's CPU (this process's) while it sends, in µs per task. */
  const cpuOf = async (send: () => Promise<void>) => {
    const cpu = process.cpuUsage();
    const ms = await timed(send);
    const used = process.cpuUsage(cpu);
    return { ms, cpuUs: (used.user + used.system) / count };
  };
  if (system === "bullmq") {
    const queue = new Queue(QUEUE, { connection: bullConnection(), prefix });
    await queue.waitUntilReady();
    const { ms, cpuUs } = await cpuOf(async () => {
      if (bulk) {
        for (const chunk of chunks(count, BATCH)) {
          await queue.addBulk(chunk.map((n) => ({ name: "noop", data: { n } })));
        }
      } else for (let n = 0; n < count; n++) await queue.add("noop", { n });
    });
    await queue.close();
    return { perSecond: perSecond(count, ms), ids, cpuUs };
  }
  const client = createClient({ broker: withPrefix(REDIS_URL, prefix) });
  const task = noopOn(QUEUE);
  const handle = client.task(task);
  await client.connect();
  const { ms, cpuUs } = await cpuOf(async () => {
    if (bulk) {
      for (const chunk of chunks(count, BATCH)) {
        for (const r of await client.sendMany(chunk.map((n) => s(task, n)))) ids.push(r.id);
      }
    } else for (let n = 0; n < count; n++) ids.push((await handle.delay(n)).id);
  });
  await client.close();
  return { perSecond: perSecond(count, ms), ids, cpuUs };
}

/** Checkpoints a drain reports: its figures run from the first to the last (steady state). */
const CHECKPOINTS = 10;

/**
 * A worker process drains `count` queued tasks: its rate and CPU per task in steady state (from
 * the first tenth of the tasks done to the last, so that neither start-up nor warming the code up
 * counts), and its RSS at the end.
 */
export async function drain(
  system: System,
  concurrency: number,
  count: number,
): Promise<{ rate: number; cpuUs: number; rss: number }> {
  const prefix = newPrefix();
  try {
    await fill(system, prefix, count, true);
    const url = withPrefix(REDIS_URL, prefix);
    const worker = nodeWorker({
      system,
      broker: system === "bullmq" ? REDIS_URL : url,
      backend: url,
      prefix,
      queue: QUEUE,
      concurrency,
      every: Math.max(1, Math.floor(count / CHECKPOINTS)),
    });
    const first = await worker.next();
    let last = first;
    for (let n = 1; n < CHECKPOINTS; n++) last = await worker.next();
    await worker.stop();
    const tasks = last.tasks - first.tasks;
    return {
      rate: perSecond(tasks, last.ms - first.ms),
      cpuUs: (last.cpuUs - first.cpuUs) / tasks,
      rss: last.rss,
    };
  } finally {
    await dropKeys(prefix);
  }
}

async function bullRoundTrips(rounds: number): Promise<number[]> {
  const prefix = newPrefix();
  const connection = bullConnection();
  const worker = new BullWorker(QUEUE, async (job) => job.data.n as number, {
    connection,
    prefix,
    concurrency: 1,
  });
  const queue = new Queue(QUEUE, { connection, prefix });
  const events = new QueueEvents(QUEUE, { connection, prefix });
  await events.waitUntilReady();
  const samples: number[] = [];
  try {
    for (let n = 0; n < rounds; n++) {
      samples.push(
        await timed(async () => (await queue.add("noop", { n })).waitUntilFinished(events)),
      );
    }
  } finally {
    await Promise.all([worker.close(), queue.close(), events.close()]);
    await dropKeys(prefix);
  }
  return samples;
}

async function celeryTsRoundTrips(rounds: number): Promise<number[]> {
  const prefix = newPrefix();
  const url = withPrefix(REDIS_URL, prefix);
  try {
    return await roundTrips(url, url, QUEUE, rounds);
  } finally {
    await dropKeys(prefix);
  }
}

async function pythonDrain(count: number): Promise<{ rate: number; cpuUs: number; rss: number }> {
  const prefix = newPrefix();
  const { ids } = await fill("celery-ts", prefix, count, true);
  try {
    const run = await pythonProcessing({
      broker: REDIS_URL,
      backend: REDIS_URL,
      prefix,
      queue: QUEUE,
      ids,
    });
    return { rate: perSecond(count, run.ms), cpuUs: run.cpuUs / count, rss: run.rss };
  } finally {
    await dropKeys(
      prefix,
      ids.map((id) => `celery-task-meta-${id}`),
    );
  }
}

/** One round of every scenario for one system, added to its samples. */
async function round(system: System | "python", total: number, into: Samples): Promise<void> {
  const c1 = Math.max(1_000, total / 4);
  if (system === "python") {
    const run = await pythonDrain(c1);
    add(into, "process", run.rate);
    add(into, "cpu", run.cpuUs);
    add(into, "rss", run.rss);
    return;
  }
  const one = newPrefix();
  add(into, "enqueueOne", (await fill(system, one, total / 4, false)).perSecond);
  await dropKeys(one);
  const bulk = newPrefix();
  add(into, "enqueueBulk", (await fill(system, bulk, total, true)).perSecond);
  await dropKeys(bulk);
  for (const [concurrency, count] of [
    [50, total],
    [1, c1],
  ] as const) {
    const run = await drain(system, concurrency, count);
    add(into, `process${concurrency}`, run.rate);
    add(into, `cpu${concurrency}`, run.cpuUs);
    add(into, `rss${concurrency}`, run.rss);
  }
  const latency =
    system === "bullmq"
      ? await bullRoundTrips(LATENCY_ROUNDS)
      : await celeryTsRoundTrips(LATENCY_ROUNDS);
  add(into, "p50", percentile(latency, 50));
  add(into, "p99", percentile(latency, 99));
}

/** Each system's producer sends a few batches first, unmeasured: rounds compare warm code. */
async function warmUp(): Promise<void> {
  for (const system of ["celery-ts", "bullmq"] as const) {
    for (const bulk of [false, true]) {
      const prefix = newPrefix();
      await fill(system, prefix, WARM_UP, bulk);
      await dropKeys(prefix);
    }
  }
}

/**
 * Enqueue alone, in more rounds than the full section affords: one by one and in bulk, each
 * system in turn (the order turns each round), with the producer's CPU per task.
 */
export async function enqueueSection(total: number): Promise<Section> {
  const samples: Record<System, Samples> = { "celery-ts": {}, bullmq: {} };
  await warmUp();
  for (let r = 0; r < ROUNDS; r++) {
    console.error(`bench: enqueue round ${r + 1} of ${ROUNDS}`);
    const order: System[] = r % 2 ? ["bullmq", "celery-ts"] : ["celery-ts", "bullmq"];
    for (const bulk of [false, true]) {
      for (const system of order) {
        const prefix = newPrefix();
        const run = await fill(system, prefix, bulk ? total : total / 4, bulk);
        await dropKeys(prefix);
        add(samples[system], bulk ? "bulk" : "one", run.perSecond);
        add(samples[system], bulk ? "bulkCpu" : "oneCpu", run.cpuUs);
      }
    }
  }
  const [ours, bull] = [samples["celery-ts"], samples.bullmq];
  const row = (scenario: string, key: string, unit: Unit) => ({
    scenario,
    cells: [cell(ours[key], bull[key], unit), cell(bull[key], bull[key], unit)],
  });
  return {
    title: `Enqueue on Redis: celery-ts and BullMQ 6.7 (${total} no-op tasks, ${ROUNDS} interleaved rounds)`,
    columns: ["celery-ts", "BullMQ"],
    rows: [
      row(`enqueue one by one (${total / 4}, each awaited)`, "one", RATE),
      row("producer CPU per task, one by one", "oneCpu", MICROS),
      row(`enqueue in bulk: sendMany / addBulk (${total}, ${BATCH} a call)`, "bulk", RATE),
      row("producer CPU per task, in bulk", "bulkCpu", MICROS),
    ],
    notes: `Medians of ${ROUNDS} interleaved rounds (the order of the systems turns each round), ± half
their range; ratios are to BullMQ, the median of the rounds' ratios (above 1× is better, for costs
too). Each figure is a fresh client (celery-ts) or Queue (BullMQ) in the bench's process, timed
from its first send to its last reply; CPU is the bench process's during that time (the producer's
own, not Redis's). Both systems first send a few unmeasured batches, so that rounds compare warm
code. celery-ts writes kombu's layout: a lone delay() is one LPUSH; BullMQ's add() is one script.`,
  };
}

export async function redisSection(total: number): Promise<Section> {
  const ours: Samples = {};
  const bull: Samples = {};
  const python: Samples = {};
  await warmUp();
  for (let r = 0; r < ROUNDS; r++) {
    console.error(`bench: redis round ${r + 1} of ${ROUNDS}`);
    await round("celery-ts", total, ours);
    await round("bullmq", total, bull);
    await round("python", total, python);
  }
  const row = (scenario: string, key: string, unit: Unit, pythonKey?: string) => ({
    scenario,
    cells: [
      cell(ours[key], bull[key], unit),
      cell(bull[key], bull[key], unit),
      pythonKey ? cell(python[pythonKey], bull[key], unit) : "n/a",
    ],
  });
  const c1 = Math.max(1_000, total / 4);
  return {
    title: `Redis: celery-ts, BullMQ 6.7 and Python Celery 5.2 (prefork) on one Redis (${total} no-op tasks, ${ROUNDS} interleaved rounds)`,
    columns: ["celery-ts", "BullMQ", "Python Celery, prefork"],
    rows: [
      row(`enqueue one by one (${total / 4}, each awaited)`, "enqueueOne", RATE),
      row(`enqueue in bulk: sendMany / addBulk (${total}, ${BATCH} a call)`, "enqueueBulk", RATE),
      row(`process, concurrency 50 (${total} queued)`, "process50", RATE),
      row("worker CPU per task, concurrency 50", "cpu50", MICROS),
      row("worker RSS after it, concurrency 50", "rss50", MB),
      row(`process, concurrency 1 (${c1} queued)`, "process1", RATE, "process"),
      row("worker CPU per task, concurrency 1", "cpu1", MICROS, "cpu"),
      row("worker RSS after it, concurrency 1", "rss1", MB, "rss"),
      row("round trip p50 (send, then await the result)", "p50", MS),
      row("round trip p99", "p99", MS),
    ],
    notes: `Medians of ${ROUNDS} interleaved rounds (each system in turn, round after round), ± half their
range; ratios are to BullMQ, the median of the rounds' ratios (above 1× is better, for costs too).
Each worker runs in a process of its own and reports every tenth of its tasks; its rate and CPU
per task run from the first report to the last (steady state: neither start-up nor warming the
code up counts), its RSS is at the end. A task counts once its result is stored (BullMQ: its
"completed"). Both store results (celery-ts in Celery's layout) and acknowledge after storing,
each with its defaults (celery-ts: prefetch the concurrency + max(4, a quarter); BullMQ fetches the next job
with each completion). Python Celery runs Debian's celery 5.2 with its defaults (prefork pool of
one process per core, prefetch 4 each, early ack), timed from its "ready" line (after its start-up)
to its last result; its CPU and RSS are the pool's and the master's together, and it is filled
by celery-ts's sendMany (its enqueue is not measured). It stands beside concurrency 1 (a pool of
${"`nproc`"} single-task processes). Before the first round each system's producer sends a few
unmeasured batches, so that rounds compare warm code.`,
  };
}
