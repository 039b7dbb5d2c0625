import { randomUUID } from "node:crypto";
import { createTaskMessage, encodeTaskMessage, type Delivery } from "@celery-ts/core";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisTransport } from "../src/index.ts";
import { mutexExpireMs } from "../src/internal/restore.ts";
import { deletePrefix, rawClient, REDIS_URL, until } from "./support/redis.ts";
import { uniquePrefix } from "./support/redis.ts";

const raw = rawClient();
const prefix = uniquePrefix("restore-mutex");

afterAll(async () => {
  await deletePrefix(raw, prefix);
  raw.disconnect();
});

describe("restore lock (unacked_mutex)", () => {
  it("never outlives the visibility timeout (kombu's 300 s at most)", () => {
    expect(mutexExpireMs(400)).toBe(400);
    expect(mutexExpireMs(3_600_000)).toBe(300_000);
  });

  it("does not hold back a dead holder's message past redeliveryWindow", async () => {
    const visibilityTimeout = 0.6;
    const [dying, survivor] = [
      createRedisTransport({ connection: REDIS_URL, keyPrefix: prefix, visibilityTimeout }),
      createRedisTransport({ connection: REDIS_URL, keyPrefix: prefix, visibilityTimeout }),
    ];
    const queue = `mutex-${randomUUID()}`;
    await dying.publish(encodeTaskMessage(createTaskMessage({ task: "redis.n", args: [1] })), {
      queue,
    });
    const held: Delivery[] = [];
    const first = new AbortController();
    void dying
      .consume([queue], (d) => void held.push(d), { prefetch: 1, signal: first.signal })
      .catch(() => {});
    await until(() => held.length === 1, 3_000);
    // The holder dies in the middle of a restore round: it took the lock as every restorer
    // does (SET NX PX) and never released it. A crash cannot release it, so the TTL must.
    // Taken as soon as it is free: the holder's own restorer takes it for each of its rounds
    // (every 150 ms here), and a round may be under way now.
    const takeLock = async () =>
      (await raw.set(
        `${prefix}unacked_mutex`,
        `dead-${randomUUID()}`,
        "PX",
        mutexExpireMs(visibilityTimeout * 1000),
        "NX",
      )) === "OK";
    await until(takeLock, 3_000);
    await dying.close({ force: true });
    const closedAt = Date.now();
    const back: Delivery[] = [];
    const second = new AbortController();
    const done = survivor.consume([queue], (d) => void back.push(d), {
      prefetch: 1,
      signal: second.signal,
    });
    const window = survivor.capabilities.redeliveryWindow;
    // The declared window plus a stated margin of 1.5 s for a loaded machine.
    await until(() => back.length === 1, window * 1000 + 1_500);
    expect(back[0]?.redelivered).toBe(true);
    expect(Date.now() - closedAt).toBeLessThan(window * 1000 + 1_500);
    await back[0]?.ack();
    second.abort();
    await done.catch(() => {});
    await survivor.close();
  });
});
