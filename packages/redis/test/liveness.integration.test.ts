import { randomUUID } from "node:crypto";
import {
  createTaskMessage,
  encodeTaskMessage,
  type Delivery,
  type Transport,
} from "@celery-ts/core";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createRedisTransport, type RedisTransportOptions } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, sleep, uniquePrefix, until } from "./support/redis.ts";

const raw = rawClient();
const prefix = uniquePrefix("liveness");
const message = (n: number) =>
  encodeTaskMessage(createTaskMessage({ task: "liveness.n", args: [n] }));

afterAll(async () => {
  await deletePrefix(raw, prefix);
});

/** Records a message as delivered and unacknowledged, as kombu does; held by `holder` if given. */
async function recordUnacked(queue: string, holder?: string): Promise<string> {
  const tag = randomUUID();
  const body = JSON.stringify({ body: "e30=", headers: {}, properties: { delivery_tag: tag } });
  const transaction = raw
    .multi()
    .hset(`${prefix}unacked`, tag, `[${body}, "", ${JSON.stringify(queue)}]`)
    .zadd(`${prefix}unacked_index`, Date.now() / 1000, tag);
  if (holder !== undefined) transaction.sadd(`${prefix}_celery-ts.held.${holder}`, tag);
  await transaction.exec();
  return tag;
}

describe("liveness of celery-ts consumers on Redis", () => {
  const open: Transport[] = [];
  const controllers: AbortController[] = [];
  afterEach(async () => {
    controllers.splice(0).forEach((controller) => controller.abort());
    await Promise.all(open.splice(0).map((transport) => transport.close()));
  });
  // kombu's default visibility timeout: only liveness can bring a message back within a test.
  const connect = (options: RedisTransportOptions = {}): Transport => {
    const transport = createRedisTransport({
      connection: REDIS_URL,
      keyPrefix: prefix,
      visibilityTimeout: 3600,
      livenessTimeout: 1,
      ...options,
    });
    open.push(transport);
    return transport;
  };
  const consume = (transport: Transport, queue: string) => {
    const received: Delivery[] = [];
    const controller = new AbortController();
    controllers.push(controller);
    void transport
      .consume([queue], (d) => void received.push(d), { prefetch: 10, signal: controller.signal })
      .catch(() => undefined);
    return received;
  };

  it("restores a dead consumer's messages within its liveness timeout, not kombu's hour", async () => {
    const queue = `dead-${randomUUID()}`;
    const [dying, survivor] = [connect(), connect()];
    for (let i = 0; i < 3; i++) await dying.publish(message(i), { queue });
    const held = consume(dying, queue);
    await until(() => held.length === 3, 3_000, "the first deliveries");
    const back = consume(survivor, queue);
    // Forced: nothing is written, as when the process is killed.
    await dying.close({ force: true });
    const window = survivor.capabilities.redeliveryWindow;
    expect(window).toBeLessThanOrEqual(3);
    // Bounded well below kombu's hour, with room for a loaded machine; the window is the promise.
    await until(() => back.length === 3, (window + 5) * 1000, "the restored messages");
    expect(back.every((d) => d.redelivered)).toBe(true);
    // Every way of settling takes the tag out of the consumer's record.
    await back[0]!.reject({ requeue: false, reason: "liveness test" });
    await back[1]!.reject({ requeue: true });
    await until(() => back.length === 4, 3_000, "the requeued message");
    await Promise.all(back.slice(2).map((d) => d.ack()));
    expect(await raw.hlen(`${prefix}unacked`)).toBe(0);
    // The settles took the tags out of the survivor's record; the dead one's record is gone.
    expect(await raw.keys(`${prefix}_celery-ts.held.*`)).toEqual([]);
  }, 20_000);

  it("never takes a message away from a live consumer whose task is slow", async () => {
    const queue = `slow-${randomUUID()}`;
    const [slow, idle] = [connect(), connect()];
    await slow.publish(message(1), { queue });
    const held = consume(slow, queue);
    await until(() => held.length === 1, 3_000, "the delivery");
    const other = consume(idle, queue);
    // Four liveness timeouts and the declared window: a live holder keeps its message.
    await sleep((4 + idle.capabilities.redeliveryWindow) * 1000);
    expect(other).toHaveLength(0);
    await held[0]!.ack();
  }, 20_000);

  it("leaves a message that no celery-ts consumer holds (a Python worker's) to the visibility timeout", async () => {
    const queue = `python-${randomUUID()}`;
    // As kombu records a message it delivered: no celery-ts holder.
    const tag = await recordUnacked(queue);
    const restorer = connect();
    const received = consume(restorer, queue);
    await sleep((4 + restorer.capabilities.redeliveryWindow) * 1000);
    expect(received).toHaveLength(0);
    expect(await raw.hexists(`${prefix}unacked`, tag)).toBe(1);
    await raw.multi().hdel(`${prefix}unacked`, tag).zrem(`${prefix}unacked_index`, tag).exec();
  }, 20_000);

  it("puts back at a graceful close what an ack that failed left unacknowledged", async () => {
    const queue = `close-${randomUUID()}`;
    const transport = connect();
    const before = new Set(await raw.smembers(`${prefix}_celery-ts.consumers`));
    consume(transport, queue);
    let id: string | undefined;
    await until(async () => {
      id = (await raw.smembers(`${prefix}_celery-ts.consumers`)).find((c) => !before.has(c));
      return id !== undefined;
    }, 3_000);
    // As an ack lost in an outage leaves it: held by this consumer, no longer in its ledger.
    const tag = await recordUnacked(queue, id);
    controllers.splice(0).forEach((controller) => controller.abort());
    await transport.close();
    expect(await raw.hexists(`${prefix}unacked`, tag)).toBe(0);
    expect(await raw.llen(`${prefix}${queue}`)).toBe(1);
    expect(await raw.sismember(`${prefix}_celery-ts.consumers`, id!)).toBe(0);
    expect(
      await raw.exists(`${prefix}_celery-ts.held.${id}`, `${prefix}_celery-ts.alive.${id}`),
    ).toBe(0);
    await raw.del(`${prefix}${queue}`);
  });
});
