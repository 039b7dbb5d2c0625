// The worker's Prometheus endpoint counts broker connection losses and reconnects, reported by
// the Redis transport (`onConnectionEvent`); the loss is real: Redis kills the connection.
import { randomUUID } from "node:crypto";
import { createClient } from "@celery-ts/client";
import { defineTask } from "@celery-ts/core";
import { createWorker } from "@celery-ts/worker";
import { Redis } from "ioredis";
import { afterAll, expect, it } from "vitest";
import { createRedisTransport } from "../src/index.ts";
import {
  deletePrefix,
  killConnections,
  rawClient,
  REDIS_URL,
  uniquePrefix,
  until,
} from "./support/redis.ts";
import { freePort } from "./support/private-redis.ts";

const raw = rawClient();
const prefix = uniquePrefix("metrics");
afterAll(() => deletePrefix(raw, prefix));

const add = defineTask("metrics.add", (a: number, b: number) => a + b);

it("counts broker connection losses and reconnects, and serves them to a scrape", async () => {
  const name = `metrics-${randomUUID().slice(0, 8)}`;
  const connection = new Redis(REDIS_URL, { connectionName: name, lazyConnect: true });
  const transport = createRedisTransport({ connection, keyPrefix: prefix });
  const port = await freePort();
  const queue = `metrics-${randomUUID()}`;
  const worker = createWorker({
    broker: transport,
    backend: REDIS_URL,
    tasks: [add],
    queues: [queue],
    metricsPort: port,
    remoteControl: false,
    heartbeat: false,
  });
  const client = createClient({
    broker: createRedisTransport({ connection: REDIS_URL, keyPrefix: prefix }),
    backend: REDIS_URL,
  });
  const scrape = async (): Promise<string> =>
    (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  try {
    await worker.start();
    expect(
      await (await client.sendTask("metrics.add", { args: [1, 2], queue })).get({ timeout: 10 }),
    ).toBe(3);
    expect(await scrape()).not.toContain("celery_ts_broker_reconnects_total{");
    // The consuming connection dies; the transport reconnects it.
    await until(
      async () => (await killConnections(raw, `${name}:consumer`)) > 0,
      5_000,
      "the consumer connection",
    );
    await until(
      async () => (await scrape()).includes('celery_ts_broker_reconnects_total{role="consumer"} 1'),
      20_000,
      "the reconnect to be counted",
    );
    const text = await scrape();
    expect(text).toContain('celery_ts_broker_connection_lost_total{role="consumer"} 1');
    expect(text).toContain("# TYPE celery_ts_broker_reconnects_total counter");
    // And the worker works on.
    expect(
      await (await client.sendTask("metrics.add", { args: [2, 2], queue })).get({ timeout: 10 }),
    ).toBe(4);
  } finally {
    await worker.stop();
    await client.close();
    await transport.close();
    connection.disconnect();
  }
}, 60_000);
