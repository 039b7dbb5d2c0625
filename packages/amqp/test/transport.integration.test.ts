import {
  createTaskMessage,
  decodeJson,
  decodeTaskMessage,
  encodeJson,
  encodeTaskMessage,
  isCeleryTsError,
  publishAll,
  silentLogger,
  unsentOf,
  type Delivery,
} from "@celery-ts/core";
import { waitAbsenceWindow } from "@celery-ts/testing";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { BROKER_URL, rabbitAdmin, unique, until, VHOST } from "./support/rabbit.ts";
import { kombu } from "./support/kombu.ts";
import { firstReal, message, transports, untilBroadcastBound } from "./support/transports.ts";

vi.setConfig({ testTimeout: 30_000 });

const admin = rabbitAdmin();
const t = transports(admin);
afterEach(() => t.closeAll());
afterAll(() => admin.cleanup());

const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
};

interface KombuMessage {
  body: string;
  headers: Record<string, unknown>;
  properties: Record<string, unknown>;
  delivery_info: { exchange: string; routing_key: string };
}

describe("declarations, as kombu makes them", () => {
  it("declares a queue, its direct exchange and binding exactly as Celery does", async () => {
    const queue = unique("layout");
    admin.trackCeleryQueue(queue);
    const transport = t.connect();
    await transport.publish(message(), { queue });
    await admin.withChannel(async (channel) => {
      expect(await channel.checkQueue(queue)).toMatchObject({ queue, messageCount: 1 });
      await channel.checkExchange(queue);
    });
    // RabbitMQ refuses to declare again with any other durable, auto_delete, exclusive, type or
    // argument: kombu's own declaration succeeding proves ours is the same.
    expect(
      await kombu({ op: "declare", url: BROKER_URL, entities: [{ kind: "queue", name: queue }] }),
    ).toEqual({
      ok: true,
    });
    const other = await kombu<{ error: string }>({
      op: "declare",
      url: BROKER_URL,
      entities: [{ kind: "queue", name: queue, max_priority: 10 }],
    });
    expect(other.error).toMatch(/PRECONDITION_FAILED - inequivalent arg 'x-max-priority'/);
  });

  it("declares priority queues as Celery's task_queue_max_priority does", async () => {
    const queue = unique("layout-priority");
    admin.trackCeleryQueue(queue);
    await t.connect({ maxPriority: 10 }).publish(message(), { queue, priority: 5 });
    expect(
      await kombu({
        op: "declare",
        url: BROKER_URL,
        entities: [{ kind: "queue", name: queue, max_priority: 10 }],
      }),
    ).toEqual({ ok: true });
  });

  it("declares quorum queues as kombu's queue_arguments x-queue-type does", async () => {
    const queue = unique("layout-quorum");
    admin.trackCeleryQueue(queue);
    await t.connect({ queueType: "quorum" }).purge(queue);
    expect(
      await kombu({
        op: "declare",
        url: BROKER_URL,
        entities: [{ kind: "queue", name: queue, queue_arguments: { "x-queue-type": "quorum" } }],
      }),
    ).toEqual({ ok: true });
  });

  it("declares a broadcast exchange as kombu's Broadcast does", async () => {
    const name = unique("layout-broadcast");
    admin.trackExchange(name);
    await t
      .connect({ queues: { [name]: { broadcast: true } } })
      .publish(message(), { queue: name });
    expect(
      await kombu({ op: "declare", url: BROKER_URL, entities: [{ kind: "broadcast", name }] }),
    ).toEqual({
      ok: true,
    });
  });

  it("names the queue and the argument when a queue exists with other arguments", async () => {
    const queue = unique("mismatch");
    admin.trackCeleryQueue(queue);
    // A Python worker declared it first, with task_queue_max_priority = 5.
    await kombu({
      op: "declare",
      url: BROKER_URL,
      entities: [{ kind: "queue", name: queue, max_priority: 5 }],
    });
    const transport = t.connect({ maxPriority: 10 });
    const error = await caught(() => transport.publish(message(), { queue }));
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toContain(
      `the queue "${queue}" (vhost "${VHOST}") already exists with a different x-max-priority: it is ` +
        "5 on the server, but celery-ts declares 10",
    );
    const consuming = await caught(() =>
      transport.consume([queue], () => undefined, {
        prefetch: 1,
        signal: new AbortController().signal,
      }),
    );
    expect(isCeleryTsError(consuming, "CONFIG")).toBe(true);
    expect((consuming as Error).message).toContain("x-max-priority");
    // The transport is still usable for other queues.
    const fine = unique("mismatch-other");
    admin.trackCeleryQueue(fine);
    await transport.publish(message(), { queue: fine });
  });
});

describe("messages, as Celery publishes and reads them", () => {
  it("publishes the raw JSON body with Celery's headers and properties, as py-amqp reads them", async () => {
    const queue = unique("wire");
    admin.trackCeleryQueue(queue);
    const task = createTaskMessage({
      task: "tasks.add",
      args: [2, 3],
      kwargs: { é: "ü" },
      timeLimit: [300, null],
      retries: 2,
      replyTo: "reply-queue",
      groupIndex: 70_000,
      headers: {
        big: 2 ** 40,
        // Beyond 2^53: py-amqp reads it exactly (as an int), not rounded.
        huge: 2n ** 63n - 1n,
        ratio: 0.5,
        nested: { list: [1, null, "x"] },
      },
    });
    const sent = encodeTaskMessage(task);
    await t.connect().publish(sent, { queue, priority: 3 });
    const seen = await kombu<KombuMessage>({ op: "get", url: BROKER_URL, queue });
    expect(seen.body).toBe(sent.body);
    expect(seen.delivery_info).toEqual({ exchange: "", routing_key: queue });
    expect(seen.properties).toEqual({
      content_type: "application/json",
      content_encoding: "utf-8",
      delivery_mode: 2,
      priority: 3,
      correlation_id: task.headers.id,
      reply_to: "reply-queue",
    });
    // Every header as Python sees it: 300 stays 300 (not a short string), null stays None.
    expect(seen.headers).toEqual(decodeJson(encodeJson(sent.headers)));
    expect(seen.headers.huge).toBe(2n ** 63n - 1n);
  });

  it("reads what py-amqp writes: None, [None, None], 64-bit ints, datetimes, decimals, bytes", async () => {
    const queue = unique("wire-in");
    const transport = t.connect();
    const consumer = t.consume(transport, [queue]);
    await until(() => admin.queueExists(queue), 10_000, "the consumer's queue");
    await kombu({
      op: "publish",
      url: BROKER_URL,
      queue,
      body: "[[], {}, {}]",
      correlation_id: "c-1",
      headers: {
        task: "tasks.t",
        id: "c-1",
        shadow: null,
        timelimit: [null, null],
        retries: 0,
        limit: 300,
        // py-amqp writes this with the tag "L", which amqplib alone cannot read.
        millis: 1_700_000_000_000,
        // Beyond 2^53, both signs: bigints, exactly (a double would round them).
        huge: 2n ** 63n - 1n,
        negative: -(2n ** 63n),
        when: { __datetime__: "2024-05-01T12:30:00" },
        price: { __decimal__: "19.99" },
        blob: { __bytes__: "0102" },
        stamps: { a: [1, "b"] },
      },
    });
    const [delivery] = await consumer.waitFor(1);
    expect(delivery?.message?.headers).toEqual({
      task: "tasks.t",
      id: "c-1",
      shadow: null,
      timelimit: [null, null],
      retries: 0,
      limit: 300,
      millis: 1_700_000_000_000,
      huge: 2n ** 63n - 1n,
      negative: -(2n ** 63n),
      when: new Date("2024-05-01T12:30:00Z"),
      price: "19.99",
      blob: "\u0001\u0002",
      stamps: { a: [1, "b"] },
    });
    expect(delivery?.message?.properties).toMatchObject({ correlation_id: "c-1", priority: 0 });
    await delivery?.ack();
  });
});

describe("publishing", () => {
  it("resolves once RabbitMQ has the message (publisher confirms)", async () => {
    const queue = unique("confirm");
    admin.trackCeleryQueue(queue);
    const transport = t.connect();
    for (let i = 0; i < 20; i++) await transport.publish(message({ args: [i] }), { queue });
    // Another connection sees every one at once: nothing was still in a client buffer.
    expect(await admin.messageCount(queue)).toBe(20);
  });

  it("rejects a message RabbitMQ cannot route (its queue was deleted), then declares it again", async () => {
    const queue = unique("returned");
    admin.trackCeleryQueue(queue);
    const transport = t.connect();
    await transport.publish(message(), { queue });
    await admin.withChannel((channel) => channel.deleteQueue(queue));
    const error = await caught(() => transport.publish(message(), { queue }));
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: true });
    expect((error as Error).message).toMatch(/returned it, as no queue is bound/);
    await transport.publish(message(), { queue });
    expect(await admin.messageCount(queue)).toBe(1);
  });
});

describe("publishing a batch", () => {
  it("encodes every message before sending any: a bad header fails the whole batch", async () => {
    const queue = unique("batch-encode");
    admin.trackCeleryQueue(queue);
    const transport = t.connect();
    await transport.publish(message(), { queue });
    const bad = message();
    bad.headers["!"] = "amqplib reads this key as a type tag";
    const batch = [message(), bad, message()].map((m) => ({ message: m, options: { queue } }));
    const error = await caught(() => publishAll(transport, batch));
    expect(isCeleryTsError(error, "ENCODE")).toBe(true);
    expect(await admin.messageCount(queue)).toBe(1);
  });

  it("names the messages RabbitMQ did not take, and confirms the others", async () => {
    const [kept, deleted] = [unique("batch-kept"), unique("batch-deleted")];
    admin.trackCeleryQueue(kept);
    admin.trackCeleryQueue(deleted);
    const transport = t.connect();
    await transport.publish(message(), { queue: deleted });
    await admin.withChannel((channel) => channel.deleteQueue(deleted));
    const batch = [0, 1, 2, 3].map((i) => ({
      message: message({ args: [i] }),
      options: { queue: i % 2 ? deleted : kept },
    }));
    const error = await caught(() => publishAll(transport, batch));
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: true });
    expect((error as Error).message).toMatch(
      /^\[celery-ts:amqp\] 2 of 4 messages were not published .*returned it, as no queue is bound/,
    );
    expect(unsentOf(error)).toEqual([batch[1], batch[3]]);
    expect(await admin.messageCount(kept)).toBe(2);
    // Sent again, they reach the queue, declared again.
    await publishAll(transport, unsentOf(error)!);
    expect(await admin.messageCount(deleted)).toBe(2);
  });
});

describe("broadcast queues", () => {
  it("delivers one message to every consumer, each on its own auto-deleted queue", async () => {
    const name = unique("broadcast");
    admin.trackExchange(name);
    const options = { queues: { [name]: { broadcast: true } } };
    const [a, b, producer] = [t.connect(options), t.connect(options), t.connect(options)];
    const first = t.consume(a, [name]);
    const second = t.consume(b, [name]);
    await untilBroadcastBound(producer, name, [first, second]);
    await producer.publish(message({ args: ["to all"] }), { queue: name });
    const x = await firstReal(first);
    const y = await firstReal(second);
    for (const delivery of [x, y]) {
      expect(delivery?.queue).toBe(name);
      expect(decodeTaskMessage(delivery!.message!).args).toEqual(["to all"]);
      await delivery?.ack();
    }
    expect(x?.message?.properties.delivery_info).toEqual({ exchange: name, routing_key: name });
  });
});

describe("onConsuming", () => {
  it("is called once every queue's basic.consume is confirmed: a broadcast queue gets a message published at that moment", async () => {
    const name = unique("broadcast-live");
    const queue = unique("live");
    admin.trackExchange(name);
    admin.trackCeleryQueue(queue);
    const options = { queues: { [name]: { broadcast: true } } };
    const [consumerSide, producer] = [t.connect(options), t.connect(options)];
    await producer.connect();
    // Declares the exchange, so that a publish before the consumer's queue is bound is dropped.
    await producer.publish(message({ args: ["before"] }), { queue: name });
    const received: Delivery[] = [];
    const controller = new AbortController();
    let calls = 0;
    let sent: Promise<void> | undefined;
    const done = consumerSide.consume([queue, name], (delivery) => received.push(delivery), {
      prefetch: 10,
      signal: controller.signal,
      onConsuming: () => {
        calls++;
        // At once: a consumer called live before its broadcast queue is bound loses this one.
        sent ??= producer.publish(message({ args: ["to all"] }), { queue: name });
      },
    });
    try {
      await until(() => calls > 0, 15_000, "onConsuming");
      await sent;
      expect(await admin.consumerCount(queue)).toBe(1);
      await until(() => received.length === 1, 10_000, "the broadcast message");
      expect(received[0]?.queue).toBe(name);
      expect(decodeTaskMessage(received[0]!.message!).args).toEqual(["to all"]);
      await received[0]?.ack();
      expect(calls).toBe(1);
    } finally {
      controller.abort();
      await done;
    }
  });
});

describe("priorities", () => {
  it("serves 9 first and 0 last on a queue declared with x-max-priority", async () => {
    const queue = unique("priority");
    const transport = t.connect({ maxPriority: 10 });
    for (const p of [4, 0, 9, 2, 7, 1, 8, 3, 6, 5]) {
      await transport.publish(message({ args: [p] }), { queue, priority: p });
    }
    const consumer = t.consume(transport, [queue], 1);
    const order: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      const delivery = (await consumer.waitFor(i + 1))[i]!;
      order.push(decodeTaskMessage(delivery.message!).args[0]);
      await delivery.ack();
    }
    expect(order).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it("refuses a priority outside 0..maxPriority", async () => {
    const error = await caught(() =>
      t.connect({ maxPriority: 9 }).publish(message(), { queue: "never-declared", priority: 10 }),
    );
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
  });
});

describe("dead letters", () => {
  it("keeps rejected messages with their reason, and deadLetters() only peeks", async () => {
    const exchange = unique("dlx");
    admin.trackExchange(exchange);
    const queue = unique("dead");
    const transport = t.connect({ deadLetter: { exchange } });
    for (let i = 0; i < 3; i++) await transport.publish(message({ args: [i] }), { queue });
    const consumer = t.consume(transport, [queue], 1);
    const before = Date.now();
    for (let i = 0; i < 3; i++) {
      const delivery = (await consumer.waitFor(i + 1))[i]!;
      await delivery.reject({ requeue: false, reason: `reason ${i}` });
    }
    const dead = await transport.deadLetters!(queue);
    expect(dead.map((d) => d.reason)).toEqual(["reason 0", "reason 1", "reason 2"]);
    expect(dead.every((d) => d.queue === queue && d.rejectedAt >= before)).toBe(true);
    expect(JSON.parse(dead[1]!.raw)[0]).toEqual([1]);
    // Peeking twice reads the same letters, in the same order, and leaves them there.
    expect((await transport.deadLetters!(queue, { limit: 2 })).map((d) => d.reason)).toEqual([
      "reason 0",
      "reason 1",
    ]);
    expect(await admin.messageCount(`${queue}.dead`)).toBe(3);
    expect(await transport.purge(queue)).toBe(0);
    expect(await admin.messageCount(`${queue}.dead`)).toBe(3);
  });

  it("on by default beside Python Celery's queues; an older dead-letter queue is used as it is", async () => {
    admin.trackSharedExchange("celery_ts.dead");
    const queue = unique("dead-default");
    admin.trackCeleryQueue(queue);
    // Python Celery declared the queue first (no arguments), an older celery-ts its .dead queue.
    const declared = { kind: "queue", name: queue };
    expect(await kombu({ op: "declare", url: BROKER_URL, entities: [declared] })).toEqual({
      ok: true,
    });
    await admin.withChannel((channel) => channel.assertQueue(`${queue}.dead`, { durable: true }));
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (msg: string) => void warnings.push(msg) };
    const transport = t.connect({ logger });
    expect(transport.capabilities.deadLetter).toBe(true);
    const sent = message({ args: ["x"] });
    for (let i = 0; i < 2; i++) await transport.publish(i === 0 ? sent : message(), { queue });
    const consumer = t.consume(transport, [queue], 2);
    for (const delivery of await consumer.waitFor(2)) {
      await delivery.reject({ requeue: false, reason: "refused" });
    }
    const dead = await transport.deadLetters!(queue);
    expect(dead.map((d) => d.reason)).toEqual(["refused", "refused"]);
    expect(dead[0]!.taskId).toBe(sent.headers.id);
    expect(dead[0]!.taskName).toBe(sent.headers.task);
    expect(warnings.filter((w) => w.includes(`"${queue}.dead" exists with other`))).toHaveLength(1);
    // The queue itself is still what Python Celery declares: it declares it again unchanged.
    expect(await kombu({ op: "declare", url: BROKER_URL, entities: [declared] })).toEqual({
      ok: true,
    });
    const taskId = sent.headers.id as string;
    expect(await transport.replayDeadLetters!(queue, { taskId })).toBe(1);
    // Replayed as it was before the rejection: the consumer gets it again, without our headers.
    const replayed = (await consumer.waitFor(3))[2]!;
    expect(replayed.message!.headers.id).toBe(taskId);
    expect(replayed.message!.headers).not.toHaveProperty("x-celery-ts-reason");
  });

  it("with declareArguments, RabbitMQ itself dead-letters what another consumer rejects", async () => {
    const exchange = unique("dlx-native");
    admin.trackExchange(exchange);
    const queue = unique("dead-native");
    admin.trackCeleryQueue(queue);
    const transport = t.connect({ deadLetter: { exchange, declareArguments: true } });
    await transport.publish(message({ args: ["native"] }), { queue });
    // A Python worker declares the queue with the same queue_arguments, or RabbitMQ refuses it.
    expect(
      await kombu({
        op: "declare",
        url: BROKER_URL,
        entities: [
          {
            kind: "queue",
            name: queue,
            queue_arguments: {
              "x-dead-letter-exchange": exchange,
              "x-dead-letter-routing-key": queue,
            },
          },
        ],
      }),
    ).toEqual({ ok: true });
    await admin.withChannel(async (channel) => {
      const got = await channel.get(queue, { noAck: false });
      if (got === false) throw new Error("no message");
      channel.nack(got, false, false);
    });
    // RabbitMQ routes the rejected message on its own time: wait for it, bounded.
    await until(
      async () => (await admin.messageCount(`${queue}.dead`)) === 1,
      10_000,
      "RabbitMQ to dead-letter the rejected message",
    );
    const [letter] = await transport.deadLetters!(queue);
    expect(letter).toMatchObject({ queue, reason: "rejected" });
    expect(letter!.rejectedAt).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe("consuming", () => {
  it("keeps outstanding deliveries valid after the signal aborts, until close()", async () => {
    const queue = unique("abort");
    const transport = t.connect();
    for (let i = 0; i < 3; i++) await transport.publish(message({ args: [i] }), { queue });
    const consumer = t.consume(transport, [queue], 2);
    const held = await consumer.waitFor(2);
    consumer.stop();
    await consumer.done;
    await held[0]!.ack();
    await held[1]!.reject({ requeue: true });
    expect(await admin.messageCount(queue)).toBe(2);
    await transport.close();
    const error = await caught(() => held[1]!.ack());
    expect(isCeleryTsError(error, "CLOSED")).toBe(true);
  });

  it("declares its queue again and resumes when the queue is deleted under it", async () => {
    const queue = unique("deleted");
    const transport = t.connect({ reconnectInitialDelay: 0.02 });
    const consumer = t.consume(transport, [queue]);
    // Deleted while consumed: RabbitMQ cancels the consumer.
    await until(
      () =>
        admin.consumerCount(queue).then(
          (n) => n > 0,
          () => false,
        ),
      20_000,
      "the consumer",
    );
    await admin.withChannel((channel) => channel.deleteQueue(queue));
    await until(() => admin.queueExists(queue), 20_000, "the queue to be declared again");
    await t.connect().publish(message({ args: ["after"] }), { queue });
    const [delivery] = await consumer.waitFor(1);
    expect(decodeTaskMessage(delivery!.message!).args).toEqual(["after"]);
  });

  it("declares its queue again when it was deleted after its declaration, before basic.consume", async () => {
    const queue = unique("deleted-before");
    const transport = t.connect({ reconnectInitialDelay: 0.02 });
    // The publish declares the queue; the transport remembers that it did.
    await transport.publish(message({ args: ["before"] }), { queue });
    await admin.withChannel((channel) => channel.deleteQueue(queue));
    // basic.consume finds no queue (404); the next try declares it again.
    const consumer = t.consume(transport, [queue]);
    await until(() => admin.queueExists(queue), 20_000, "the queue to be declared again");
    await t.connect().publish(message({ args: ["after"] }), { queue });
    const [delivery] = await consumer.waitFor(1);
    expect(decodeTaskMessage(delivery!.message!).args).toEqual(["after"]);
  });

  it("ignores a second settle of the same delivery", async () => {
    const queue = unique("twice");
    const transport = t.connect();
    await transport.publish(message(), { queue });
    await transport.publish(message(), { queue });
    const consumer = t.consume(transport, [queue], 5);
    const [a, b] = await consumer.waitFor(2);
    await a!.ack();
    await a!.ack();
    await a!.reject({ requeue: true });
    // A second basic.ack of the same tag would have closed the channel: b is still ours.
    await b!.ack();
    await waitAbsenceWindow(transport); // a declared window: nothing comes back
    expect(consumer.received).toHaveLength(2);
    expect(await admin.messageCount(queue)).toBe(0);
  });

  it("ends consume() with the error of a throwing callback, handing its messages back", async () => {
    const queue = unique("throwing");
    const transport = t.connect();
    for (let i = 0; i < 3; i++) await transport.publish(message({ args: [i] }), { queue });
    admin.trackCeleryQueue(queue);
    const done = transport.consume(
      [queue],
      () => {
        throw new Error("callback bug");
      },
      { prefetch: 3, signal: new AbortController().signal },
    );
    await expect(done).rejects.toThrow("callback bug");
    const rest = t.consume(t.connect(), [queue]);
    const deliveries: Delivery[] = await rest.waitFor(3);
    expect(deliveries.every((d) => d.redelivered)).toBe(true);
  });
});
