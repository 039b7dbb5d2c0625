// Beat on RabbitMQ, which keeps no coordination store: its lease and ticks go to Redis by URL.
import { randomUUID } from "node:crypto";
import { decodeTaskMessage, resolveStore, silentLogger } from "@celery-ts/core";
import { testServers } from "@celery-ts/testing";
import { createBeat } from "@celery-ts/worker";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createAmqpTransport } from "../src/index.ts";

vi.setConfig({ testTimeout: 60_000 });

// The servers of the run (CELERY_TS_REDIS_URL, CELERY_TS_AMQP_URL): see docs/testing.md.
const { redisUrl: REDIS_URL, amqpUrl: AMQP_URL } = testServers();

async function waitFor<T>(
  check: () => T | undefined | false,
  withinMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${withinMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Deletes a beat namespace's keys from the shared Redis. */
async function clearNamespace(namespace: string): Promise<void> {
  const store = await resolveStore(REDIS_URL);
  try {
    for (const { key, value } of await store.list(`beat:${namespace}:`))
      await store.deleteIfEquals(key, value);
  } finally {
    await store.close();
  }
}

describe("beat on RabbitMQ", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it("runs on RabbitMQ with its lease and ticks in a Redis store named by URL", async () => {
    const queue = `beat-amqp-${randomUUID()}`;
    const namespace = `amqp-${randomUUID()}`;
    const beat = createBeat({
      broker: AMQP_URL,
      store: REDIS_URL,
      namespace,
      entries: [{ name: "e", task: "amqp.tick", every: 0.5, options: { queue } }],
      logger: silentLogger,
    });
    cleanups.push(() => clearNamespace(namespace));
    cleanups.push(() => beat.stop());
    await beat.start();
    const consumer = createAmqpTransport({ url: AMQP_URL });
    cleanups.push(() => consumer.close());
    const abort = new AbortController();
    const ids: string[] = [];
    const consuming = consumer.consume(
      [queue],
      (delivery) => {
        if (delivery.message) ids.push(decodeTaskMessage(delivery.message).headers.id);
        void delivery.ack();
      },
      { prefetch: 10, signal: abort.signal },
    );
    await waitFor(() => ids.length >= 3, 20_000, "three ticks over RabbitMQ");
    abort.abort();
    await consuming;
    expect(new Set(ids).size).toBe(ids.length);
    const [status] = await beat.schedule.list();
    expect(status).toMatchObject({ name: "e", source: "code", last: { state: "sent" } });
  });
});
