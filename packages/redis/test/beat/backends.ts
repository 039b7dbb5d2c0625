// The brokers (each its own store) the beat tests run on, each in a namespace of its own that
// cleanup() removes: a Redis key prefix, a PostgreSQL schema, a SQLite file.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  type Transport,
} from "@celery-ts/core";
import { createPostgresTransport } from "@celery-ts/postgres";
import { createSqliteTransport } from "@celery-ts/sqlite";
import { testServers } from "@celery-ts/testing";
import pg from "pg";
import { createRedisTransport } from "../../src/index.ts";

// The servers of the run (CELERY_TS_REDIS_URL, CELERY_TS_POSTGRES_URL): see docs/testing.md.
const { redisUrl: REDIS_URL, postgresUrl: PG_URL } = testServers();

export interface Backend {
  name: string;
  url: string;
  transport(): Transport;
  cleanup(): Promise<void>;
}

async function redisBackend(): Promise<Backend> {
  const prefix = `celery-ts-test:beat-ha:${randomUUID()}:`;
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  return {
    name: "redis",
    url,
    transport: () => createRedisTransport({ connection: url }),
    async cleanup() {
      const { Redis } = await import("ioredis");
      const client = new Redis(REDIS_URL);
      let cursor = "0";
      do {
        const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
        cursor = next;
        if (keys.length > 0) await client.del(...keys);
      } while (cursor !== "0");
      await client.quit();
    },
  };
}

async function postgresBackend(): Promise<Backend> {
  // A schema of this run's own: the broker's and the store's tables, dropped afterwards.
  const schema = `celery_ts_test_beat_ha_${randomUUID().slice(0, 8)}`;
  return {
    name: "postgres",
    url: `${PG_URL}?schema=${schema}`,
    transport: () => createPostgresTransport({ url: PG_URL, schema, pollInterval: 0.1 }),
    async cleanup() {
      const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

async function sqliteBackend(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-ha-"));
  const path = join(dir, "beat.db");
  return {
    name: "sqlite",
    url: `sqlite:///${path}`,
    transport: () => createSqliteTransport({ path, pollInterval: 0.1 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export const BACKENDS: Record<string, () => Promise<Backend>> = {
  redis: redisBackend,
  postgres: postgresBackend,
  sqlite: sqliteBackend,
};

/** A message the beats sent, as a worker received it. */
export interface Received {
  id: string;
  /** When it arrived (epoch ms). */
  at: number;
  /** The `origin` header: `gen<pid>@<host>` of the process that sent it. */
  origin: string | null;
  /** Whether it carries the claim (`celery_ts_once`) of a tick sent in two steps. */
  claim: boolean;
}

/** The task of the marker `drained()` publishes: never counted as received. */
const MARKER_TASK = "celery-ts-test.drained";

/**
 * Consumes `queue` on a new transport of `backend`, collecting what arrives until `stop()`.
 * `drained()`, once nothing publishes to the queue any more, resolves when every message on it
 * has arrived and been acknowledged: it publishes a marker behind them (one queue, one priority:
 * delivered in order, rule 16) and waits for it, and for the acks.
 */
export function receive(
  backend: Backend,
  queue: string,
): { received: Received[]; drained(): Promise<void>; stop(): Promise<void> } {
  const received: Received[] = [];
  const markers = new Set<string>();
  let unacked = 0;
  const consumer = backend.transport();
  const abort = new AbortController();
  const consuming = consumer.consume(
    [queue],
    (delivery) => {
      if (delivery.message) {
        const { headers } = decodeTaskMessage(delivery.message);
        if (headers.task === MARKER_TASK) markers.add(headers.id);
        else {
          received.push({
            id: headers.id,
            at: Date.now(),
            origin: headers.origin,
            claim: headers.celery_ts_once !== undefined,
          });
        }
      }
      unacked++;
      void delivery.ack().finally(() => unacked--);
    },
    { prefetch: 50, signal: abort.signal },
  );
  return {
    received,
    async drained() {
      const marker = createTaskMessage({ task: MARKER_TASK });
      await consumer.publish(encodeTaskMessage(marker), { queue });
      const id = marker.headers.id;
      const deadline = Date.now() + 30_000;
      while (!markers.has(id) || unacked > 0) {
        if (Date.now() > deadline) throw new Error(`the queue ${queue} was not drained in 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async stop() {
      abort.abort();
      await consuming;
      await consumer.close();
    },
  };
}
