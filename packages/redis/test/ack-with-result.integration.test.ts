import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  type Delivery,
  type ResultMeta,
  type Transport,
} from "@celery-ts/core";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisBackend, createRedisTransport } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, uniquePrefix, until } from "./support/redis.ts";

const raw = rawClient();
const prefix = uniquePrefix("ack-with-result");

afterAll(async () => {
  await deletePrefix(raw, prefix);
});

const meta = (id: string, result: unknown): ResultMeta => ({
  status: "SUCCESS",
  result,
  traceback: null,
  children: [],
  date_done: "2026-01-01T00:00:00.000000",
  task_id: id,
});

/** The same server and database as REDIS_URL, named otherwise: another server, as far as we know. */
const elsewhere = REDIS_URL.replace("127.0.0.1", "localhost");

/** Publishes one message to `queue` and consumes it (prefetch 1): its delivery, unacknowledged. */
async function oneDelivery(transport: Transport, queue: string) {
  const message = createTaskMessage({ task: "redis.n", args: [1] });
  await transport.publish(encodeTaskMessage(message), { queue });
  const deliveries: Delivery[] = [];
  const abort = new AbortController();
  const done = transport.consume([queue], (d) => deliveries.push(d), {
    prefetch: 1,
    signal: abort.signal,
  });
  await until(() => deliveries.length === 1, 10_000, "the delivery");
  const stop = async (): Promise<void> => {
    abort.abort();
    await done;
  };
  return { id: message.headers.id, delivery: deliveries[0]!, stop };
}

describe("a result written with the ack, broker and backend on one Redis", () => {
  it("stores the result (with its expiry, published to waiters) and acknowledges in one write; the next message comes with it", async () => {
    const transport = createRedisTransport({ connection: REDIS_URL, keyPrefix: prefix });
    const backend = createRedisBackend({ connection: REDIS_URL, keyPrefix: prefix, expires: 60 });
    const queue = "fused";
    // Every command a client sent naming our keys (MONITOR, on its own connection; the commands
    // a script runs come as from "lua", and are left out).
    const seen: string[][] = [];
    const monitor = await raw.monitor();
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source !== "lua" && args.some((a) => a.startsWith(prefix))) seen.push(args.map(String));
    });
    const messages = [0, 1, 2].map((n) => createTaskMessage({ task: "redis.n", args: [n] }));
    for (const m of messages) await transport.publish(encodeTaskMessage(m), { queue });
    const waiting = backend.waitFor(messages[0]!.headers.id, { timeout: 10 });
    const deliveries: Delivery[] = [];
    const abort = new AbortController();
    const done = transport.consume([queue], (d) => deliveries.push(d), {
      prefetch: 1,
      signal: abort.signal,
    });
    for (let n = 0; n < 3; n++) {
      await until(() => deliveries.length === n + 1, 10_000, `delivery ${n}`);
      const id = decodeTaskMessage(deliveries[n]!.message!).headers.id;
      const prepared = backend.prepareStore!(id, meta(id, n * 10));
      expect(await deliveries[n]!.ackWithResult!(prepared)).toBe(true);
      expect(await backend.get(id)).toMatchObject({ status: "SUCCESS", result: n * 10 });
      // One script both stored the result and acknowledged the delivery; while a message was
      // waiting, the same script took it (the queue's list is among its keys).
      const resultKey = `${prefix}celery-task-meta-${id}`;
      await until(() => seen.some((c) => c.includes(resultKey) && c[0] === "get"), 10_000, "GET");
      const writes = seen.filter((c) => c.includes(resultKey) && /^(eval|set|publish)/.test(c[0]!));
      expect(writes).toHaveLength(1);
      expect(writes[0]![0]).toMatch(/^eval(sha)?$/);
      expect(writes[0]).toContain(`${prefix}unacked`);
      expect(writes[0]).toContain(deliveries[n]!.deliveryTag);
      if (n < 2) expect(writes[0]).toContain(`${prefix}${queue}`);
      // No other command acknowledged it (a plain ack would name its tag).
      expect(seen.filter((c) => c.includes(deliveries[n]!.deliveryTag))).toEqual(writes);
      const ttl = await raw.pttl(`${prefix}celery-task-meta-${id}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
    expect(await waiting).toMatchObject({ status: "SUCCESS", result: 0 });
    // Acknowledged as kombu does: nothing left unacked or in the queue.
    expect(await raw.hlen(`${prefix}unacked`)).toBe(0);
    expect(await raw.zcard(`${prefix}unacked_index`)).toBe(0);
    expect(await raw.llen(`${prefix}${queue}`)).toBe(0);
    abort.abort();
    await done;
    await transport.close();
    await backend.close();
    monitor.disconnect();
  });

  it("writes nothing for a backend elsewhere: false, the delivery still to acknowledge", async () => {
    const transport = createRedisTransport({ connection: REDIS_URL, keyPrefix: prefix });
    const backend = createRedisBackend({ connection: elsewhere, keyPrefix: prefix });
    const { id, delivery, stop } = await oneDelivery(transport, "apart");
    expect(await delivery.ackWithResult!(backend.prepareStore!(id, meta(id, 1)))).toBe(false);
    expect(await backend.get(id)).toBeUndefined();
    expect(await raw.hexists(`${prefix}unacked`, delivery.deliveryTag)).toBe(1);
    await delivery.ack();
    expect(await raw.hexists(`${prefix}unacked`, delivery.deliveryTag)).toBe(0);
    await stop();
    await transport.close();
    await backend.close();
  });
});

describe("a result for a broker client given with ioredis's keyPrefix", () => {
  it("is not written with the ack (its keys would be prefixed where the backend never reads): false, stored by the backend", async () => {
    const prefixed = new Redis(REDIS_URL, { keyPrefix: `${prefix}a:` });
    const transport = createRedisTransport({ connection: prefixed, keyPrefix: prefix });
    const backend = createRedisBackend({ connection: REDIS_URL, keyPrefix: prefix });
    const { id, delivery, stop } = await oneDelivery(transport, "prefixed");
    expect(await delivery.ackWithResult!(backend.prepareStore!(id, meta(id, 1)))).toBe(false);
    expect(await raw.exists(`${prefix}a:${prefix}celery-task-meta-${id}`)).toBe(0);
    // The worker's fallback: the backend stores it, then the delivery is acknowledged.
    await backend.store(id, meta(id, 1));
    await delivery.ack();
    expect(await backend.get(id)).toMatchObject({ status: "SUCCESS", result: 1 });
    await stop();
    await transport.close();
    await backend.close();
    await deletePrefix(raw, `${prefix}a:`);
    prefixed.disconnect();
  });
});
