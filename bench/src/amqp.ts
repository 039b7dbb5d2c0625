// RabbitMQ, side by side: celery-ts and Python Celery (prefork) on the vhost of the run
// (CELERY_TS_AMQP_URL), in interleaved rounds, results in the run's Redis under a prefix of the
// bench's own. One queue of the bench's own, purged before every scenario and deleted (with its
// exchange) at the end.
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { createAmqpTransport } from "@celery-ts/amqp";
import { testServers } from "@celery-ts/testing";
import { createClient, s } from "@celery-ts/client";
import { noopOn, roundTrips } from "./celery-ts.ts";
import { nodeWorker } from "./child.ts";
import { chunks } from "./figures.ts";
import { pythonProcessing } from "./python.ts";
import { REDIS_URL } from "./redis.ts";
import type { Section } from "./report.ts";
import { add, cell, MB, MICROS, MS, RATE, type Samples } from "./samples.ts";
import { dropKeys, newPrefix, QUICK, ROUNDS, withPrefix } from "./servers.ts";
import { percentile, perSecond, timed } from "./stats.ts";

/** The RabbitMQ (and vhost) of the run: CELERY_TS_AMQP_URL, as for the tests (docs/testing.md). */
const AMQP_URL = testServers().amqpUrl;
const LATENCY_ROUNDS = QUICK ? 100 : 500;
/** Celery's rpc:// backend over the same broker (a celery-ts URL form: rpc:// plus the broker). */
const RPC_URL = AMQP_URL.replace(/^amqps?/, "rpc");

/** The few amqplib calls the clean-up needs. */
interface AdminChannel {
  deleteQueue(queue: string): Promise<unknown>;
  deleteExchange(exchange: string, options?: { ifUnused?: boolean }): Promise<unknown>;
  close(): Promise<void>;
}
interface AdminConnection {
  createChannel(): Promise<AdminChannel>;
  close(): Promise<void>;
}

/**
 * Deletes the bench's queue and its exchange (celery-ts declares a direct exchange named after
 * each queue). Through the amqplib that
 * @celery-ts/amqp itself loads: the bench has no amqplib of its own.
 */
async function deleteDeclarations(queue: string): Promise<void> {
  const amqplib = createRequire(import.meta.resolve("@celery-ts/amqp"))("amqplib") as {
    connect(url: string): Promise<AdminConnection>;
  };
  const connection = await amqplib.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
    await channel.deleteExchange(queue);
    await channel.close();
  } finally {
    await connection.close();
  }
}

async function purge(queue: string): Promise<void> {
  const transport = createAmqpTransport({ url: AMQP_URL });
  await transport.purge(queue);
  await transport.close();
}

/** Fills `queue` with `count` no-op tasks: one by one (each awaited) or with sendMany. */
async function fill(queue: string, count: number, bulk: boolean) {
  const client = createClient({ broker: AMQP_URL });
  const task = noopOn(queue);
  const handle = client.task(task);
  await client.connect();
  const ids: string[] = [];
  const ms = await timed(async () => {
    if (bulk) {
      for (const chunk of chunks(count, 1_000)) {
        for (const r of await client.sendMany(chunk.map((n) => s(task, n)))) ids.push(r.id);
      }
    } else for (let n = 0; n < count; n++) ids.push((await handle.delay(n)).id);
  });
  await client.close();
  return { perSecond: perSecond(count, ms), ids };
}

async function celeryTsRound(queue: string, total: number, into: Samples): Promise<void> {
  await purge(queue);
  add(into, "enqueueOne", (await fill(queue, total / 4, false)).perSecond);
  await purge(queue);
  add(into, "enqueueBulk", (await fill(queue, total, true)).perSecond);
  await purge(queue);
  await fill(queue, total, true);
  const prefix = newPrefix();
  try {
    const worker = nodeWorker({
      system: "celery-ts",
      broker: AMQP_URL,
      backend: withPrefix(REDIS_URL, prefix),
      prefix,
      queue,
      concurrency: 50,
      every: total,
    });
    const done = await worker.next();
    await worker.stop();
    add(into, "process", perSecond(total, done.ms));
    add(into, "cpu", done.cpuUs / total);
    add(into, "rss", done.rss);
    const latency = await roundTrips(
      AMQP_URL,
      withPrefix(REDIS_URL, prefix),
      queue,
      LATENCY_ROUNDS,
    );
    add(into, "p50", percentile(latency, 50));
    add(into, "p99", percentile(latency, 99));
    await purge(queue);
    const rpc = await roundTrips(AMQP_URL, RPC_URL, queue, LATENCY_ROUNDS);
    add(into, "rpc50", percentile(rpc, 50));
    add(into, "rpc99", percentile(rpc, 99));
  } finally {
    await dropKeys(prefix);
  }
}

async function pythonRound(queue: string, total: number, into: Samples): Promise<void> {
  await purge(queue);
  const { ids } = await fill(queue, total, true);
  try {
    const run = await pythonProcessing({
      broker: AMQP_URL,
      backend: REDIS_URL,
      prefix: "",
      queue,
      ids,
    });
    add(into, "process", perSecond(total, run.ms));
    add(into, "cpu", run.cpuUs / total);
    add(into, "rss", run.rss);
  } finally {
    await dropKeys(
      newPrefix(),
      ids.map((id) => `celery-task-meta-${id}`),
    );
  }
}

export async function amqpSection(total: number): Promise<Section> {
  const queue = `celery-ts-bench-${randomUUID().slice(0, 8)}`;
  const ours: Samples = {};
  const python: Samples = {};
  try {
    for (let r = 0; r < ROUNDS; r++) {
      console.error(`bench: amqp round ${r + 1} of ${ROUNDS}`);
      await celeryTsRound(queue, total, ours);
      await pythonRound(queue, total, python);
    }
  } finally {
    // Not in the way of an error the measurements threw.
    await deleteDeclarations(queue).catch((error: unknown) =>
      console.error(`bench: could not delete the RabbitMQ queue "${queue}":`, error),
    );
  }
  const row = (scenario: string, key: string, unit: typeof RATE, vsPython = false) => ({
    scenario,
    cells: [
      cell(ours[key], vsPython ? python[key] : undefined, unit),
      vsPython ? cell(python[key], python[key], unit) : "n/a",
    ],
  });
  return {
    title: `RabbitMQ: celery-ts and Python Celery 5.2 (prefork) on one vhost (${total} no-op tasks, ${ROUNDS} interleaved rounds)`,
    columns: ["celery-ts", "Python Celery, prefork"],
    rows: [
      row(`enqueue one by one (${total / 4}, each awaited)`, "enqueueOne", RATE),
      row(`enqueue with sendMany (${total}, 1,000 a call)`, "enqueueBulk", RATE),
      row(`process (${total} queued): celery-ts at concurrency 50`, "process", RATE, true),
      row("worker CPU per task", "cpu", MICROS, true),
      row("worker RSS after it", "rss", MB, true),
      row("round trip p50, Redis backend (send, then await the result)", "p50", MS),
      row("round trip p99, Redis backend", "p99", MS),
      row("round trip p50, rpc:// backend", "rpc50", MS),
      row("round trip p99, rpc:// backend", "rpc99", MS),
    ],
    notes: `Medians of ${ROUNDS} interleaved rounds, ± half their range; ratios are to Python Celery in the same
rounds (above 1× is better, for costs too). Both workers run in processes of their own on the same
queue of the same vhost, filled by celery-ts's sendMany; results go to the run's Redis. celery-ts
publishes with confirms (an awaited delay() means RabbitMQ has the message), runs at concurrency 50
(prefetch 50) and acknowledges after storing the result. Python Celery runs Debian's celery 5.2 with
its defaults: a prefork pool of one process per core, prefetch 4 per process, acknowledging on
receipt; timed from its "ready" line to its last result. The rpc:// rows are celery-ts's results sent
back over RabbitMQ (Celery's rpc:// backend, to the client's reply queue).`,
  };
}
