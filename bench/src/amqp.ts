// RabbitMQ, side by side: celery-ts on RabbitMQ, celery-ts on Redis and celery-node on RabbitMQ,
// in one run. Everything uses one queue of the bench's own: on RabbitMQ purged before every
// scenario and deleted (with its exchange) at the end; on Redis, db 9, flushed.
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { createAmqpTransport } from "@celery-ts/amqp";
import { celeryNodeFigures } from "./celery-node.ts";
import { celeryTsFigures, roundTrips, type Setup } from "./celery-ts.ts";
import { cell, LATENCY_ROUNDS, latencyPercentile, type Figures } from "./figures.ts";
import { redisSetup } from "./redis.ts";
import type { Section } from "./report.ts";
import { percentile } from "./stats.ts";

const AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//";
/** Celery's rpc:// backend over the same broker (a celery-ts URL form: rpc:// plus the broker). */
const RPC_URL = "rpc://guest:guest@127.0.0.1:5672//";

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
 * each queue), and celery-node's unused "default" exchange. Through the amqplib that
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
    await channel.deleteExchange("default", { ifUnused: true });
    await channel.close();
  } finally {
    await connection.close();
  }
}

export async function amqpSection(total: number): Promise<Section> {
  const queue = `celery-ts-bench-${randomUUID().slice(0, 8)}`;
  const amqp: Setup = {
    broker: AMQP_URL,
    backend: redisSetup.backend,
    fresh: async () => {
      await redisSetup.fresh(); // the results
      const transport = createAmqpTransport({ url: AMQP_URL });
      await transport.purge(queue);
      await transport.close();
      return queue;
    },
  };
  // Redis's column on db 9 as in the redis section, but on this queue rather than "celery".
  const redis: Setup = {
    ...redisSetup,
    fresh: async () => {
      await redisSetup.fresh();
      return queue;
    },
  };
  let onRabbit: Figures, onRedis: Figures, node: Figures, rpc: number[];
  try {
    onRabbit = await celeryTsFigures(total, amqp);
    rpc = await roundTrips(AMQP_URL, RPC_URL, await amqp.fresh());
    onRedis = await celeryTsFigures(total, redis);
    node = await celeryNodeFigures(total, amqp);
  } finally {
    // Not in the way of an error the measurements threw.
    await deleteDeclarations(queue).catch((error: unknown) =>
      console.error(`bench: could not delete the RabbitMQ queue "${queue}":`, error),
    );
  }

  const systems = [onRabbit, onRedis, node];
  const p = latencyPercentile;
  const row = (
    scenario: string,
    pick: (f: Figures) => number | undefined,
    unit: string,
    lowerIsBetter = false,
  ) => {
    // To celery-node over RabbitMQ; where it has no figure, RabbitMQ's cell is to Redis's.
    const base = pick(node);
    return {
      scenario,
      cells: systems.map((f) =>
        base !== undefined
          ? cell(pick(f), base, unit, lowerIsBetter)
          : cell(pick(f), f === onRabbit ? pick(onRedis) : undefined, unit, lowerIsBetter, "Redis"),
      ),
    };
  };
  const rpcRow = (scenario: string, q: number) => ({
    scenario,
    cells: [cell(percentile(rpc, q), p(node, q), "ms", true), "n/a", "n/a"],
  });
  return {
    title: `RabbitMQ: celery-ts on RabbitMQ and on Redis, celery-node 0.5 on RabbitMQ (${total} no-op tasks)`,
    columns: ["celery-ts, RabbitMQ", "celery-ts, Redis", "celery-node, RabbitMQ"],
    rows: [
      row(`enqueue one by one (${total / 4}, each awaited)`, (f) => f.enqueueOne, "/s"),
      row(`enqueue in bulk (${total}, batches of 1,000)`, (f) => f.enqueueBulk, "/s"),
      row(`process, concurrency 50 (${total} queued)`, (f) => f.process50, "/s"),
      row(`process, concurrency 1 (${total / 10} queued)`, (f) => f.process1, "/s"),
      row(
        "round trip p50, Redis backend (send, then await the result)",
        (f) => p(f, 50),
        "ms",
        true,
      ),
      row("round trip p99, Redis backend", (f) => p(f, 99), "ms", true),
      rpcRow("round trip p50, rpc:// backend", 50),
      rpcRow("round trip p99, rpc:// backend", 99),
    ],
    notes: `Ratios are to celery-node over RabbitMQ in the same run (above 1× is better, for latency too);
in rows where celery-node has no figure, the RabbitMQ cell's ratio is to celery-ts on Redis
("× Redis"). Results go to Redis (db 9) in every column but the rpc:// rows, where celery-ts sends
them back over RabbitMQ (Celery's rpc:// backend, to the client's reply queue); those rows' ratio
is still to celery-node with Redis (its amqp:// backend is Celery's old queue-per-task one, not
rpc://). On RabbitMQ, celery-ts publishes with confirms (an awaited delay() means RabbitMQ has the
message) and acknowledges after storing the result; its prefetch is its concurrency, so 1 at
concurrency 1. celery-node publishes without confirms, acknowledges each message on arrival,
before running it, and sets no prefetch (RabbitMQ pushes it the whole queue); its count is of
tasks run, its results stored without waiting. It has no concurrency setting (its column under
"concurrency 50" is its only mode), its delay() does not wait for the broker (its enqueue is not
measured: celery-ts fills its queue), and its latency is measured over ${LATENCY_ROUNDS / 5} rounds,
get() polling Redis every millisecond. Most of its round trip is Nagle's algorithm: amqplib 0.8
leaves TCP_NODELAY off unless given \`noDelay: true\` in the broker options, which celery-node
does not set by default (measured here as it comes).`,
  };
}
