import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  createTaskMessage,
  decodeEnvelope,
  encodeJson,
  encodeTaskMessage,
  type Delivery,
  type ResultMeta,
  type Transport,
} from "@celery-ts/core";
import { absenceMs, PYTHON, waitAbsenceWindow } from "@celery-ts/testing";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  createRedisBackend,
  createRedisTransport,
  type RedisTransportOptions,
} from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, sleep, uniquePrefix, until } from "./support/redis.ts";

const SEP = "\x06\x16";
const FIXTURES = join(import.meta.dirname, "../../core/test/fixtures");
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), "utf8").trimEnd();
const message = (n = 0) => encodeTaskMessage(createTaskMessage({ task: "layout.n", args: [n] }));

const raw = rawClient();
const prefix = uniquePrefix("layout");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const runPython = async (script: string, args: string[]): Promise<string> => {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [join(import.meta.dirname, "support", script), ...args],
    {
      timeout: 30_000,
    },
  );
  return stdout.trim();
};

afterAll(async () => {
  await deletePrefix(raw, prefix);
});

describe("the broker's keys, as kombu lays them out", () => {
  const open: Transport[] = [];
  const controllers: AbortController[] = [];
  const connect = (options: RedisTransportOptions = {}): Transport => {
    // kombu's global_keyprefix: every key below sits under this file's prefix, exactly as kombu
    // would put it there, and kombu's fixed names (unacked, ...) stay away from other tests.
    const transport = createRedisTransport({
      connection: REDIS_URL,
      keyPrefix: prefix,
      ...options,
    });
    open.push(transport);
    return transport;
  };
  const consume = (transport: Transport, queues: string[], prefetch = 10) => {
    const received: Delivery[] = [];
    const controller = new AbortController();
    controllers.push(controller);
    const done = transport.consume(queues, (d) => received.push(d), {
      prefetch,
      signal: controller.signal,
    });
    return {
      received,
      done,
      stop: async () => {
        controller.abort();
        await done;
      },
    };
  };

  afterEach(async () => {
    controllers.splice(0).forEach((controller) => controller.abort());
    await Promise.all(open.splice(0).map((transport) => transport.close()));
  });

  it("stores a message as the envelope Python Celery stores, byte for byte, on the queue's list", async () => {
    const transport = connect();
    for (const [name, list] of [
      ["redis-queue-message-kwargs.json", `${prefix}celery`],
      ["redis-queue-message-priority3-countdown-expires.json", `${prefix}celery${SEP}3`],
    ] as const) {
      const python = fixture(name);
      const sent = decodeEnvelope(python).message;
      const priority = (JSON.parse(python) as { properties: { priority: number } }).properties
        .priority;
      await transport.publish(sent, { queue: "celery", priority });
      const [stored] = await raw.lrange(list, 0, -1);
      const { properties } = JSON.parse(stored!) as { properties: { delivery_tag: string } };
      expect(properties.delivery_tag).toMatch(UUID);
      const pythonTag = (JSON.parse(python) as { properties: { delivery_tag: string } }).properties
        .delivery_tag;
      expect(stored!.replace(properties.delivery_tag, pythonTag)).toBe(python);
      await raw.del(list);
    }
  });

  it("puts each priority on kombu's list for its step, and serves step 0 first", async () => {
    const transport = connect();
    const queue = `layout-${randomUUID()}`;
    for (const priority of [9, 7, 5, 3, 2, 1, 0]) {
      await transport.publish(message(priority), { queue, priority });
    }
    expect(await raw.llen(`${prefix}${queue}`)).toBe(3); // 2, 1, 0
    expect(await raw.llen(`${prefix}${queue}${SEP}3`)).toBe(2); // 5, 3
    expect(await raw.llen(`${prefix}${queue}${SEP}6`)).toBe(1); // 7
    expect(await raw.llen(`${prefix}${queue}${SEP}9`)).toBe(1); // 9
    const consumer = consume(transport, [queue], 1);
    const order: unknown[] = [];
    for (let i = 0; i < 7; i++) {
      await until(() => consumer.received.length === i + 1);
      const delivery = consumer.received[i]!;
      order.push((JSON.parse(delivery.message!.body) as [number[]])[0][0]);
      await delivery.ack();
    }
    // Within a list, first in first out; steps in order 0, 3, 6, 9.
    expect(order).toEqual([2, 1, 0, 5, 3, 7, 9]);
  });

  it("declares each queue in _kombu.binding.<queue> exactly as a Celery worker does", async () => {
    const transport = connect();
    const [python, published, consumed] = [1, 2, 3].map(() => `layout-${randomUUID()}`) as [
      string,
      string,
      string,
    ];
    expect(await runPython("celery_declare.py", [REDIS_URL, prefix, python, "celery"])).toBe(
      "declared",
    );
    const declared = async (queue: string): Promise<string[]> =>
      (await raw.smembers(`${prefix}_kombu.binding.${queue}`)).map((member) =>
        member.replaceAll(queue, "<queue>"),
      );
    const celerys = await declared(python);
    expect(celerys).toEqual([`<queue>${SEP}${SEP}<queue>`]);
    // The default queue: Celery's default exchange "celery", routing key "celery".
    expect(await raw.smembers(`${prefix}_kombu.binding.celery`)).toEqual([
      `celery${SEP}${SEP}celery`,
    ]);
    await transport.publish(message(), { queue: published });
    consume(transport, [consumed, "celery"]);
    await until(async () => (await declared(consumed)).length === 1);
    expect(await declared(published)).toEqual(celerys);
    expect(await declared(consumed)).toEqual(celerys);
    expect(await raw.smembers(`${prefix}_kombu.binding.celery`)).toEqual([
      `celery${SEP}${SEP}celery`,
    ]);
  }, 30_000);

  it("records a taken message in unacked and unacked_index as kombu does, and forgets it on ack", async () => {
    const transport = connect();
    const queue = `layout-${randomUUID()}`;
    await transport.publish(message(), { queue });
    const [stored] = await raw.lrange(`${prefix}${queue}`, 0, -1);
    const before = Date.now() / 1000;
    const consumer = consume(transport, [queue]);
    await until(() => consumer.received.length === 1);
    const delivery = consumer.received[0]!;
    expect(delivery.deliveryTag).toMatch(UUID);
    // kombu: unacked[tag] = json.dumps([message, exchange, routing_key]).
    expect(await raw.hget(`${prefix}unacked`, delivery.deliveryTag)).toBe(
      `[${stored}, "", ${JSON.stringify(queue)}]`,
    );
    const score = Number(await raw.zscore(`${prefix}unacked_index`, delivery.deliveryTag));
    expect(score).toBeGreaterThanOrEqual(before - 1);
    expect(score).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    expect(await raw.llen(`${prefix}${queue}`)).toBe(0);
    await delivery.ack();
    expect(await raw.hexists(`${prefix}unacked`, delivery.deliveryTag)).toBe(0);
    expect(await raw.zscore(`${prefix}unacked_index`, delivery.deliveryTag)).toBeNull();
  });

  it("records a message that is not JSON as a JSON string, so that kombu can still read the entry", async () => {
    const transport = connect();
    const queue = `layout-${randomUUID()}`;
    await raw.lpush(`${prefix}${queue}`, '{not "json');
    const consumer = consume(transport, [queue]);
    await until(() => consumer.received.length === 1);
    const delivery = consumer.received[0]!;
    expect(delivery.error?.code).toBe("MALFORMED_MESSAGE");
    const entry = await raw.hget(`${prefix}unacked`, delivery.deliveryTag);
    expect(JSON.parse(entry!)).toEqual(['{not "json', "", queue]);
    await consumer.stop();
    await delivery.reject({ requeue: true });
    // Requeued exactly as it was.
    expect(await raw.lrange(`${prefix}${queue}`, 0, -1)).toEqual(['{not "json']);
  });

  it("requeues at the front of the queue, marked redelivered as kombu marks it", async () => {
    const transport = connect();
    const queue = `layout-${randomUUID()}`;
    await transport.publish(message(1), { queue });
    await transport.publish(message(2), { queue });
    const consumer = consume(transport, [queue], 1);
    await until(() => consumer.received.length === 1);
    const [stored] = await raw.hmget(`${prefix}unacked`, consumer.received[0]!.deliveryTag);
    await consumer.received[0]!.reject({ requeue: true });
    await until(() => consumer.received.length === 2);
    const again = consumer.received[1]!;
    expect(again.redelivered).toBe(true);
    expect(again.message?.body).toBe(consumer.received[0]!.message?.body);
    expect(again.message?.headers.redelivered).toBe(true);
    const envelope = (JSON.parse(stored!) as [Record<string, Record<string, unknown>>])[0];
    const requeued = JSON.parse((await raw.hget(`${prefix}unacked`, again.deliveryTag))!) as [
      Record<string, Record<string, Record<string, unknown>>>,
    ];
    expect(requeued[0]).toEqual({
      ...envelope,
      headers: { ...envelope.headers, redelivered: true },
      properties: {
        ...envelope.properties,
        delivery_info: { ...(envelope.properties!.delivery_info as object), redelivered: true },
      },
    });
    await again.ack();
  });

  it("keeps dead letters, with the reason and the time, in _celery-ts.dead.<queue>", async () => {
    const transport = connect({ deadLetters: { maxCount: 2 } });
    const queue = `layout-${randomUUID()}`;
    for (let i = 0; i < 3; i++) await transport.publish(message(i), { queue });
    // LPUSH: the newest first.
    const raws = (await raw.lrange(`${prefix}${queue}`, 0, -1)).reverse();
    const consumer = consume(transport, [queue], 1);
    for (let i = 0; i < 3; i++) {
      await until(() => consumer.received.length === i + 1);
      await consumer.received[i]!.reject({ requeue: false, reason: `reason ${i}` });
    }
    const entries = (await raw.lrange(`${prefix}_celery-ts.dead.${queue}`, 0, -1)).map(
      (entry) => JSON.parse(entry) as Record<string, unknown>,
    );
    // The oldest went beyond deadLetters.maxCount.
    expect(entries.map((entry) => entry.reason)).toEqual(["reason 1", "reason 2"]);
    const taskId = (JSON.parse(raws[1]!) as { headers: { id: string } }).headers.id;
    expect(entries[0]).toEqual({
      queue,
      reason: "reason 1",
      rejected_at: expect.any(Number),
      task_id: taskId,
      raw: raws[1],
    });
    // Their bytes, counted beside them to bound them.
    const bytes = Number(await raw.get(`${prefix}_celery-ts.dead-bytes.${queue}`));
    const stored = await raw.lrange(`${prefix}_celery-ts.dead.${queue}`, 0, -1);
    expect(bytes).toBe(stored.reduce((sum, entry) => sum + Buffer.byteLength(entry), 0));
    const dead = await transport.deadLetters?.(queue, { limit: 1 });
    expect(dead).toEqual([
      { queue, reason: "reason 1", rejectedAt: entries[0]!.rejected_at, raw: raws[1], taskId },
    ]);
  });
});

describe("unacked messages, between kombu and this transport", () => {
  const open: Transport[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((transport) => transport.close()));
  });
  const connect = (options: RedisTransportOptions = {}): Transport => {
    const transport = createRedisTransport({
      connection: REDIS_URL,
      keyPrefix: prefix,
      ...options,
    });
    open.push(transport);
    return transport;
  };
  const collect = (transport: Transport, queues: string[]) => {
    const received: Delivery[] = [];
    const controller = new AbortController();
    const done = transport.consume(queues, (d) => received.push(d), {
      prefetch: 10,
      signal: controller.signal,
    });
    return {
      received,
      stop: () => {
        controller.abort();
        return done;
      },
    };
  };

  it("kombu's own restore_visible puts back what this transport recorded, marked redelivered", async () => {
    const queue = `layout-${randomUUID()}`;
    const crashing = connect();
    await crashing.publish(message(1), { queue });
    await crashing.publish(message(2), { queue, priority: 6 });
    const first = collect(crashing, [queue]);
    await until(() => first.received.length === 2);
    const bodies = first.received.map((d) => d.message?.body).sort();
    await crashing.close({ force: true });
    // Past a one-second visibility timeout, as a Python worker sees it.
    for (const d of first.received)
      await raw.zadd(`${prefix}unacked_index`, "XX", Date.now() / 1000 - 10, d.deliveryTag);
    expect(await runPython("kombu_restore.py", [REDIS_URL, prefix, "1"])).toBe("restored");
    expect(await raw.hlen(`${prefix}unacked`)).toBe(0);
    // kombu restores onto the plain list, whatever the priority.
    expect(await raw.llen(`${prefix}${queue}`)).toBe(2);
    const survivor = collect(connect(), [queue]);
    await until(() => survivor.received.length === 2);
    expect(survivor.received.map((d) => d.message?.body).sort()).toEqual(bodies);
    expect(survivor.received.every((d) => d.redelivered)).toBe(true);
    await Promise.all(survivor.received.map((d) => d.ack()));
    await survivor.stop();
  }, 30_000);

  it("restores what a kombu consumer that died recorded, routing through the binding table", async () => {
    const queue = `layout-${randomUUID()}`;
    const visibilityTimeoutMs = 500;
    const transport = connect({ visibilityTimeout: visibilityTimeoutMs / 1000 });
    // Declares the queue in _kombu.binding.<queue>, which the kombu producer routes through.
    const consumer = collect(transport, [queue]);
    await until(
      async () =>
        (await raw.sismember(
          `${prefix}_kombu.binding.${queue}`,
          `${queue}${SEP}${SEP}${queue}`,
        )) === 1,
    );
    await consumer.stop();
    const orphan = randomUUID();
    await raw.zadd(`${prefix}unacked_index`, 0, orphan);
    const taken = JSON.parse(await runPython("kombu_take.py", [REDIS_URL, prefix, queue])) as {
      delivery_tag: string;
      delivery_info: { exchange: string; routing_key: string };
    };
    expect(taken.delivery_info).toEqual({ exchange: queue, routing_key: queue });
    const entry = JSON.parse(
      (await raw.hget(`${prefix}unacked`, taken.delivery_tag))!,
    ) as unknown[];
    expect(entry.slice(1)).toEqual([queue, queue]);

    const takenAt = Date.now();
    const survivor = collect(transport, [queue]);
    await until(() => survivor.received.length === 1, 5_000);
    expect(Date.now() - takenAt).toBeGreaterThanOrEqual(visibilityTimeoutMs - 100);
    const [delivery] = survivor.received;
    expect(delivery?.redelivered).toBe(true);
    expect(delivery?.deliveryTag).not.toBe(taken.delivery_tag);
    expect(delivery?.message?.body).toBe('{"hello": "kombu"}');
    expect(await raw.hexists(`${prefix}unacked`, taken.delivery_tag)).toBe(0);
    expect(await raw.zscore(`${prefix}unacked_index`, orphan)).toBeNull();
    await delivery?.ack();
    await survivor.stop();
  }, 30_000);

  it("does not restore the messages it still holds, however long it holds them (it renews them)", async () => {
    const queue = `layout-${randomUUID()}`;
    // Renewed every third of it: 2 s leaves a loaded machine's timers most of a second of slack.
    const visibilityTimeout = 2;
    const [holder, rival] = [connect({ visibilityTimeout }), connect({ visibilityTimeout })];
    await holder.publish(message(), { queue });
    const held = collect(holder, [queue]);
    await until(() => held.received.length === 1);
    const waiting = collect(rival, [queue]);
    // Held through two declared windows (each longer than the visibility timeout): never restored.
    await sleep(2 * absenceMs(rival));
    expect(waiting.received).toHaveLength(0);
    await held.received[0]?.ack();
    await waitAbsenceWindow(rival); // a declared window: acked, it never comes back
    expect(waiting.received).toHaveLength(0);
    await Promise.all([held.stop(), waiting.stop()]);
  }, 60_000);
});

describe("the result backend's keys, as Celery lays them out", () => {
  const backend = createRedisBackend({ connection: REDIS_URL });
  const subscriber = rawClient();
  afterAll(async () => {
    await backend.close();
  });

  it.each(["redis-result-success.json", "redis-result-failure.json"])(
    "stores %s as Celery does, byte for byte, for a day, and publishes it on the key's channel",
    async (name) => {
      const python = fixture(name);
      const meta = JSON.parse(python) as ResultMeta;
      const key = `celery-task-meta-${meta.task_id}`;
      const heard = new Promise<[string, string]>((resolve) =>
        subscriber.once("message", (channel: string, text: string) => resolve([channel, text])),
      );
      await subscriber.subscribe(key);
      await backend.store(meta.task_id, meta);
      expect(await raw.get(key)).toBe(python);
      const ttl = await raw.ttl(key);
      expect(ttl).toBeGreaterThan(86_390);
      expect(ttl).toBeLessThanOrEqual(86_400);
      expect(await heard).toEqual([key, python]);
      await subscriber.unsubscribe(key);
      await raw.del(key);
    },
  );

  it("keeps a result stored with expires: 0 (Celery's result_expires=None)", async () => {
    const taskId = randomUUID();
    const forever = createRedisBackend({ connection: REDIS_URL, expires: 0 });
    await forever.store(taskId, {
      status: "SUCCESS",
      result: 1,
      traceback: null,
      children: [],
      date_done: null,
      task_id: taskId,
    });
    expect(await raw.ttl(`celery-task-meta-${taskId}`)).toBe(-1);
    await raw.del(`celery-task-meta-${taskId}`);
    await forever.close();
  });

  it("wakes a waiter on a result written the way Celery's backend writes it (SETEX + PUBLISH)", async () => {
    const meta = JSON.parse(fixture("redis-result-success.json")) as ResultMeta;
    const taskId = randomUUID();
    const text = encodeJson({ ...meta, task_id: taskId });
    const key = `celery-task-meta-${taskId}`;
    const waiting = backend.waitFor(taskId, { timeout: 10 });
    // Subscribed (the waiter reads the key once on subscribing, before it is written): from here
    // only the PUBLISH can wake it, as nothing polls; unheard, it would time out.
    await until(
      async () => ((await raw.pubsub("NUMSUB", key)) as [string, number])[1] >= 1,
      10_000,
      "the waiter's subscription",
    );
    await raw.multi().setex(key, 86_400, text).publish(key, text).exec();
    expect((await waiting).result).toBe(5);
    await raw.del(key);
  });

  it("leaves a result's channel once no one waits for it, and hears a wait for it meanwhile", async () => {
    const meta = JSON.parse(fixture("redis-result-success.json")) as ResultMeta;
    const taskId = randomUUID();
    const key = `celery-task-meta-${taskId}`;
    const subscribers = async () => ((await raw.pubsub("NUMSUB", key)) as [string, number])[1];
    const write = (result: number) => {
      const text = encodeJson({ ...meta, task_id: taskId, result });
      return raw.multi().setex(key, 86_400, text).publish(key, text).exec();
    };
    const first = backend.waitFor(taskId, { timeout: 10 });
    await until(async () => (await subscribers()) >= 1, 10_000, "the first wait's subscription");
    await write(1);
    expect((await first).result).toBe(1);
    // At once, while the channel may still be subscribed: the wait reads the key, then hears.
    await raw.del(key);
    const second = backend.waitFor(taskId, { timeout: 10 });
    await write(2);
    expect((await second).result).toBe(2);
    await until(async () => (await subscribers()) === 0, 10_000, "the channel left");
    await raw.del(key);
  });

  it("subscribes a wait that follows at once one whose signal had aborted", async () => {
    const meta = JSON.parse(fixture("redis-result-success.json")) as ResultMeta;
    const taskId = randomUUID();
    const key = `celery-task-meta-${taskId}`;
    const signal = AbortSignal.abort(new Error("aborted before the wait"));
    await expect(backend.waitFor(taskId, { timeout: 10, signal })).rejects.toThrow("aborted");
    // Within the unsubscribe delay: the key was never subscribed, so this wait must subscribe.
    const waiting = backend.waitFor(taskId, { timeout: 10 });
    await until(
      async () => ((await raw.pubsub("NUMSUB", key)) as [string, number])[1] >= 1,
      5_000,
      "the second wait's subscription",
    );
    const text = encodeJson({ ...meta, task_id: taskId, result: 3 });
    await raw.multi().setex(key, 86_400, text).publish(key, text).exec();
    expect((await waiting).result).toBe(3);
    await raw.del(key);
  });
});
