import { randomUUID } from "node:crypto";
import { connect as connectSocket } from "node:net";
import {
  createTaskMessage,
  decodeTaskMessage,
  encodeEnvelope,
  encodeTaskMessage,
  isCeleryTsError,
  type Delivery,
  type Transport,
} from "@celery-ts/core";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createRedisTransport, type RedisTransportOptions } from "../src/index.ts";
import { redisAddress } from "@celery-ts/testing";
import { TAKE } from "../src/internal/scripts.ts";
import {
  deletePrefix,
  killConnections,
  rawClient,
  REDIS_URL,
  sleep,
  uniquePrefix,
  until,
} from "./support/redis.ts";

const message = (n = 0) => encodeTaskMessage(createTaskMessage({ task: "redis.n", args: [n] }));
const argOf = (delivery: Delivery): unknown => decodeTaskMessage(delivery.message!).args[0];
const idOf = (delivery: Delivery): string => decodeTaskMessage(delivery.message!).headers.id;

const raw = rawClient();
const prefix = uniquePrefix("transport");

afterAll(async () => {
  await deletePrefix(raw, prefix);
});

/** RESP, to talk to Redis without a client library in the way. */
function resp(...args: (string | number)[]): string {
  return `*${args.length}\r\n${args
    .map((arg) => `$${Buffer.byteLength(String(arg))}\r\n${String(arg)}\r\n`)
    .join("")}`;
}

/**
 * A consumer that dies between taking a message and hearing about it: on a bare socket, it turns
 * replies off, runs the take script for one message, and drops the connection. Whatever the
 * script did happened; the consumer never learns what it took.
 */
async function takeAndDie(queue: string): Promise<void> {
  const { host, port, db } = redisAddress(REDIS_URL);
  const socket = connectSocket(port, host);
  await new Promise<void>((resolve, reject) =>
    socket.once("connect", resolve).once("error", reject),
  );
  // The script makes the tag: this base and the number 0, in 12 hex digits.
  const base = randomUUID().slice(0, 24);
  const tag = `${base}000000000000`;
  socket.write(resp("SELECT", String(db)));
  socket.write(resp("CLIENT", "REPLY", "OFF"));
  socket.write(
    resp(
      "EVAL",
      TAKE.source,
      8,
      `${prefix}unacked`,
      `${prefix}unacked_index`,
      `${prefix}_celery-ts.held.dead-consumer`,
      `${prefix}_celery-ts.consumers`,
      `${prefix}_celery-ts.alive.dead-consumer`,
      `${prefix}${queue}`,
      `${prefix}_celery-ts.dead.${queue}`,
      `${prefix}_celery-ts.dead-bytes.${queue}`,
      Date.now() / 1000,
      1,
      1,
      1,
      1,
      JSON.stringify(queue),
      base,
      0,
      "dead-consumer",
      1,
      // No size limit to speak of, dead letters off.
      2 ** 40,
      "-1 bytes",
      "-1 bytes",
      Date.now(),
      0,
      0,
      0,
    ),
  );
  // CLIENT REPLY OFF: nothing comes back; PING would not answer either. Wait until the effect shows.
  await until(async () => (await raw.hexists(`${prefix}unacked`, tag)) === 1, 2_000, "the take");
  socket.destroy();
}

describe("redis transport", () => {
  const open: Transport[] = [];
  const controllers: AbortController[] = [];
  const connect = (options: RedisTransportOptions = {}): Transport => {
    const transport = createRedisTransport({
      connection: REDIS_URL,
      keyPrefix: prefix,
      visibilityTimeout: 60,
      ...options,
    });
    open.push(transport);
    return transport;
  };
  const consume = (
    transport: Transport,
    queues: string[],
    prefetch = 10,
    onDelivery?: (delivery: Delivery) => void,
  ) => {
    const received: Delivery[] = [];
    const controller = new AbortController();
    controllers.push(controller);
    const done = transport.consume(
      queues,
      (d) => {
        received.push(d);
        onDelivery?.(d);
      },
      { prefetch, signal: controller.signal },
    );
    return { received, done, stop: () => controller.abort() };
  };

  afterEach(async () => {
    controllers.splice(0).forEach((controller) => controller.abort());
    await Promise.all(open.splice(0).map((transport) => transport.close()));
  });

  it("loses no message when the consumer's connection is killed again and again mid-take", async () => {
    const queue = `kill-${randomUUID()}`;
    const name = `celery-ts-test-${randomUUID()}`;
    const visibilityTimeoutMs = 1_000;
    const producer = connect();
    const total = 300;
    const sent = new Set<string>();
    for (let i = 0; i < total; i++) {
      const m = message(i);
      sent.add(String(m.headers.id));
      await producer.publish(m, { queue });
    }
    const consumer = connect({
      connection: { ...redisAddress(REDIS_URL), connectionName: name },
      visibilityTimeout: visibilityTimeoutMs / 1000,
    });
    const acked = new Set<string>();
    let deliveries = 0;
    consume(consumer, [queue], 5, (delivery) => {
      deliveries++;
      // Slow enough that the kills land while takes are under way.
      setTimeout(() => {
        void delivery.ack().then(() => acked.add(idOf(delivery)));
      }, 20);
    });
    let kills = 0;
    while (kills < 25 && acked.size < total) {
      await sleep(20 + Math.random() * 40);
      kills += await killConnections(raw, `${name}:consumer`);
    }
    expect(kills).toBeGreaterThanOrEqual(10);
    await until(() => acked.size === total, 20_000, "every message acknowledged");
    expect(acked).toEqual(sent);
    // At least once: a take whose reply was lost comes back after the visibility timeout.
    expect(deliveries).toBeGreaterThanOrEqual(total);
    await until(
      async () => (await raw.hlen(`${prefix}unacked`)) === 0,
      5_000,
      "an empty unacked hash",
    );
    expect(await raw.zcard(`${prefix}unacked_index`)).toBe(0);
    expect(await raw.llen(`${prefix}${queue}`)).toBe(0);
  }, 40_000);

  it("takes a message and records it as unacknowledged in one step: a consumer dying in between loses nothing", async () => {
    const queue = `lost-reply-${randomUUID()}`;
    const producer = connect();
    const sent = message(7);
    await producer.publish(sent, { queue });
    await takeAndDie(queue);
    // Gone from the queue, but recorded: kombu's BRPOP-then-HSET would have lost it here.
    expect(await raw.llen(`${prefix}${queue}`)).toBe(0);
    expect(await raw.hlen(`${prefix}unacked`)).toBeGreaterThanOrEqual(1);
    const survivor = connect({ visibilityTimeout: 0.3 });
    const consumer = consume(survivor, [queue]);
    await until(() => consumer.received.length === 1, 10_000, "the restored message");
    expect(consumer.received[0]?.redelivered).toBe(true);
    expect(consumer.received[0]?.message?.body).toBe(sent.body);
    await consumer.received[0]?.ack();
  });

  it("wakes an idle consumer at once on a push by another client, without polling", async () => {
    const transport = connect({ pollInterval: 60 });
    const queue = `wake-${randomUUID()}`;
    const consumer = consume(transport, [queue]);
    await sleep(300);
    for (let i = 0; i < 5; i++) {
      const envelope = encodeEnvelope(message(i), {
        exchange: "",
        routingKey: queue,
        priority: 0,
        deliveryTag: randomUUID(),
      });
      // A foreign producer (Python's LPUSH) does not go through this transport.
      await raw.lpush(`${prefix}${queue}`, envelope);
      // Bounded far below the 60 s poll interval: only a wake-up delivers it in time.
      await until(() => consumer.received.length === i + 1, 15_000, "the wake-up");
      await consumer.received[i]?.ack();
      await sleep(50);
    }
  }, 90_000);

  it("serves several queues round robin, and every queue's step 0 before any step 3, as kombu does", async () => {
    const transport = connect();
    const [a, b] = [`rr-a-${randomUUID()}`, `rr-b-${randomUUID()}`];
    for (let i = 0; i < 3; i++) await transport.publish(message(i), { queue: a });
    await transport.publish(message(10), { queue: b, priority: 3 });
    for (let i = 0; i < 3; i++) await transport.publish(message(20 + i), { queue: b });
    const consumer = consume(transport, [a, b], 1);
    const seen: unknown[] = [];
    for (let i = 0; i < 7; i++) {
      await until(() => consumer.received.length === i + 1);
      seen.push(argOf(consumer.received[i]!));
      await consumer.received[i]?.ack();
    }
    expect(seen).toEqual([0, 20, 1, 21, 2, 22, 10]);
  });

  it("hands outstanding messages back at once on a graceful close, first taken first again", async () => {
    const [leaving, staying] = [connect(), connect()];
    const queue = `close-${randomUUID()}`;
    for (let i = 0; i < 3; i++) await leaving.publish(message(i), { queue });
    const held = consume(leaving, [queue], 2);
    await until(() => held.received.length === 2);
    await leaving.close();
    const took = consume(staying, [queue], 1);
    const seen: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      await until(() => took.received.length === i + 1, 1_000);
      seen.push(argOf(took.received[i]!));
      await took.received[i]?.ack();
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(took.received.map((d) => d.redelivered)).toEqual([true, true, false]);
  });

  it("makes a late ack of a message restored meanwhile a no-op", async () => {
    const [slow, fast] = [connect({ visibilityTimeout: 0.4 }), connect({ visibilityTimeout: 0.4 })];
    const queue = `late-${randomUUID()}`;
    await slow.publish(message(), { queue });
    const stale = consume(slow, [queue]);
    await until(() => stale.received.length === 1);
    stale.stop();
    // As if the slow process had stalled past the visibility timeout: no more renewals.
    await slow.close({ force: true });
    const fresh = consume(fast, [queue]);
    await until(() => fresh.received.length === 1, 3_000);
    expect(fresh.received[0]?.redelivered).toBe(true);
    const staleTag = stale.received[0]!.deliveryTag;
    expect(await raw.hexists(`${prefix}unacked`, staleTag)).toBe(0);
    expect(await raw.hexists(`${prefix}unacked`, fresh.received[0]!.deliveryTag)).toBe(1);
    await fresh.received[0]?.ack();
    expect(await raw.hexists(`${prefix}unacked`, fresh.received[0]!.deliveryTag)).toBe(0);
  });

  it("ends consume() with the error of a throwing callback and hands back what it did not see", async () => {
    const [failing, other] = [connect(), connect()];
    const queue = `throw-${randomUUID()}`;
    for (let i = 0; i < 3; i++) await failing.publish(message(i), { queue });
    const controller = new AbortController();
    controllers.push(controller);
    const done = failing.consume(
      [queue],
      () => {
        throw new Error("callback bug");
      },
      { prefetch: 3, signal: controller.signal },
    );
    await expect(done).rejects.toThrow("callback bug");
    const rest = consume(other, [queue]);
    await until(() => rest.received.length === 2, 1_000);
    expect(rest.received.map(argOf)).toEqual([1, 2]);
  });

  it("rejects ack, reject, publish and purge after close with a CLOSED error; ack and reject once only", async () => {
    const transport = connect();
    const queue = `closed-${randomUUID()}`;
    await transport.publish(message(), { queue });
    await transport.publish(message(), { queue });
    const consumer = consume(transport, [queue]);
    await until(() => consumer.received.length === 2);
    const [first, second] = consumer.received;
    await first?.ack();
    await first?.ack();
    await first?.reject({ requeue: true });
    expect(await raw.llen(`${prefix}${queue}`)).toBe(0);
    await transport.close();
    await consumer.done;
    for (const attempt of [
      second?.ack(),
      second?.reject({ requeue: true }),
      transport.publish(message(), { queue }),
      transport.purge(queue),
      transport.deadLetters?.(queue),
    ]) {
      const error = await attempt?.catch((e: unknown) => e);
      expect(isCeleryTsError(error, "CLOSED")).toBe(true);
    }
    // The graceful close handed the unacknowledged one back.
    expect(await raw.llen(`${prefix}${queue}`)).toBe(1);
  });

  it("uses an ioredis client it is given, and leaves it open on close", async () => {
    const { Redis } = await import("ioredis");
    const client = new Redis(REDIS_URL);
    const transport = connect({ connection: client });
    const queue = `given-${randomUUID()}`;
    await transport.publish(message(), { queue });
    const consumer = consume(transport, [queue]);
    await until(() => consumer.received.length === 1);
    await consumer.received[0]?.ack();
    await transport.close();
    expect(client.status).toBe("ready");
    expect(await client.ping()).toBe("PONG");
    await client.quit();
  });
});
