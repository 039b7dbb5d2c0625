import { randomUUID } from "node:crypto";
import {
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  isCeleryTsError,
  publishAll,
  resolveTransport,
  unsentOf,
  type Delivery,
  type Transport,
} from "@celery-ts/core";
import { waitAbsenceWindow, waitUntil } from "@celery-ts/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createSqsTransport, type SqsTransportOptions } from "../src/index.ts";
import { collect, sleep, type Collector } from "./support/consumer.ts";
import { CREDENTIALS, REGION, useFauxqs } from "./support/fauxqs.ts";

vi.setConfig({ testTimeout: 40_000 });

const fauxqs = useFauxqs();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const connect = (options: SqsTransportOptions = {}): Transport => {
  const transport = createSqsTransport(fauxqs.options(options));
  cleanup.push(() => transport.close());
  return transport;
};
const consume = (transport: Transport, queues: string[], prefetch = 10): Collector => {
  const collector = collect(transport, queues, prefetch);
  cleanup.push(() => collector.stop());
  return collector;
};
/** An SDK client that records the commands it sends, for a transport's `client` option. */
const countingClient = (): {
  client: SQSClient;
  calls: string[];
  /** Each command with when it was sent and its `DelaySeconds`, if it had one. */
  sent: { name: string; at: number; delaySeconds?: number }[];
  count(name: string): number;
} => {
  const client = new SQSClient({
    endpoint: fauxqs.endpoint(),
    region: REGION,
    credentials: CREDENTIALS,
  });
  const calls: string[] = [];
  const sent: { name: string; at: number; delaySeconds?: number }[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      const name = (context.commandName ?? "unknown").replace(/Command$/, "");
      calls.push(name);
      const { DelaySeconds } = args.input as { DelaySeconds?: number };
      sent.push({
        name,
        at: Date.now(),
        ...(DelaySeconds !== undefined && { delaySeconds: DelaySeconds }),
      });
      return next(args);
    },
    { step: "initialize", name: "recordCommands" },
  );
  cleanup.push(() => client.destroy());
  return { client, calls, sent, count: (name) => calls.filter((call) => call === name).length };
};
const queue = (): string => `t-${randomUUID()}`;
const message = (task = "t.task", args: unknown[] = [], id?: string, retries?: number) =>
  encodeTaskMessage(
    createTaskMessage({
      task,
      args,
      ...(id !== undefined && { id }),
      ...(retries !== undefined && { retries }),
    }),
  );
const argOf = (delivery: Delivery | undefined): unknown =>
  delivery?.message && decodeTaskMessage(delivery.message).args[0];
const idOf = (delivery: Delivery | undefined): unknown =>
  delivery?.message && decodeTaskMessage(delivery.message).headers.id;
const attributesOf = async (sqsName: string): Promise<Record<string, string>> => {
  const QueueUrl = await fauxqs.queueUrl(sqsName);
  const { Attributes = {} } = await fauxqs
    .admin()
    .send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["All"] }));
  return Attributes;
};
const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
};

describe("visibility extension: long tasks do not run twice", () => {
  it("keeps a delivery held for 3x the visibility timeout from other consumers, then stops", async () => {
    const q = queue();
    const worker = countingClient();
    // 2 s, extended every third of it: a loaded machine's late timers keep over a second of slack.
    const holder = connect({ client: worker.client, visibilityTimeout: 2 });
    await holder.publish(message(), { queue: q });
    const [held] = await consume(holder, [q]).waitFor(1);
    const heldAt = Date.now();
    const other = consume(connect({ visibilityTimeout: 2 }), [q]);
    // The declared window, three timeouts and a half, and at least three extensions in it (a
    // bounded wait: late timers on a loaded machine make them late, not fewer).
    await waitUntil(
      () =>
        Date.now() - heldAt >= 3 * 2_000 + 500 && worker.count("ChangeMessageVisibilityBatch") >= 3,
      { timeoutMs: 30_000, what: "3 visibility timeouts held, with 3 extensions" },
    );
    expect(other.received).toHaveLength(0);

    await held?.ack();
    const extensions = worker.count("ChangeMessageVisibilityBatch");
    await waitAbsenceWindow(holder); // a declared window: no extension after the ack
    expect(worker.count("ChangeMessageVisibilityBatch")).toBe(extensions);
    expect(other.received).toHaveLength(0);
    expect(await fauxqs.receiveRaw(q)).toHaveLength(0);
  });

  it("stops extending a requeued message, which another consumer gets at once", async () => {
    const q = queue();
    const worker = countingClient();
    const first = connect({ client: worker.client, visibilityTimeout: 1 });
    await first.publish(message(), { queue: q });
    // Prefetch 1 and stopped: the first consumer holds this message and asks for no other.
    const consumer = collect(first, [q], 1);
    const [taken] = await consumer.waitFor(1);
    await consumer.stop();
    // Extended while held (waited for, bounded): a stopped consumer still holds what it took.
    const deadline = Date.now() + 10_000;
    while (worker.count("ChangeMessageVisibilityBatch") < 2 && Date.now() < deadline)
      await sleep(20);
    expect(worker.count("ChangeMessageVisibilityBatch")).toBeGreaterThanOrEqual(2);
    await taken?.reject({ requeue: true });
    const extensions = worker.count("ChangeMessageVisibilityBatch");
    // Bounded well under the 30 s it would wait if the requeue had not made it visible at once.
    const [again] = await consume(connect({ visibilityTimeout: 30 }), [q]).waitFor(1, 15_000);
    expect(again?.redelivered).toBe(true);
    await waitAbsenceWindow(first); // a declared window: no extension after the requeue
    expect(worker.count("ChangeMessageVisibilityBatch")).toBe(extensions);
    await again?.ack();
  });
});

describe("batches", () => {
  it("sends bulk publishes with SendMessageBatch and acks with DeleteMessageBatch", async () => {
    const q = queue();
    const sqs = countingClient();
    const transport = connect({ client: sqs.client });
    await transport.publish(message("t.warm"), { queue: q }); // creates the queue
    await Promise.all(
      Array.from({ length: 25 }, (_, i) => transport.publish(message("t.n", [i]), { queue: q })),
    );
    expect(sqs.count("SendMessageBatch")).toBe(3);
    expect(sqs.count("SendMessage")).toBe(1);

    const acks: Promise<void>[] = [];
    const consumer = collect(transport, [q], 30, (delivery) => acks.push(delivery.ack()));
    cleanup.push(() => consumer.stop());
    const deliveries = await consumer.waitFor(26);
    await Promise.all(acks);
    expect(new Set(deliveries.map(argOf))).toEqual(new Set([undefined, ...Array(25).keys()]));
    // Up to 10 per receive, and the acks of one receive deleted together.
    expect(sqs.count("ReceiveMessage")).toBeLessThanOrEqual(6);
    expect(sqs.count("DeleteMessageBatch")).toBeGreaterThanOrEqual(2);
    expect(sqs.count("DeleteMessageBatch") + sqs.count("DeleteMessage")).toBeLessThanOrEqual(6);
    expect(await fauxqs.receiveRaw(q)).toHaveLength(0);
  });

  it("fails only the entries of a batch that SQS refuses, naming the queue", async () => {
    const q = queue();
    const sqs = countingClient();
    const transport = connect({
      client: sqs.client,
      createAttributes: { MaximumMessageSize: "4096" },
    });
    await transport.publish(message("t.warm"), { queue: q });
    const results = await Promise.allSettled([
      transport.publish(message("t.small"), { queue: q }),
      transport.publish(message("t.big", ["x".repeat(8_000)]), { queue: q }),
    ]);
    expect(sqs.count("SendMessageBatch")).toBe(1);
    expect(results[0].status).toBe("fulfilled");
    const refused = results[1].status === "rejected" ? (results[1].reason as Error) : undefined;
    expect(isCeleryTsError(refused)).toBe(true);
    expect(refused).toMatchObject({ retryable: false });
    expect(refused?.message).toMatch(
      /SQS rejected SendMessageBatch on queue "t-.*" \(InvalidParameterValue: .*shorter than 4096/,
    );
    expect(await fauxqs.receiveRaw(q)).toHaveLength(2);
  });

  it("publishBatch() sends 10 per SendMessageBatch call, each queue in order", async () => {
    const [a, b] = [queue(), queue()];
    const sqs = countingClient();
    const transport = connect({ client: sqs.client });
    const batch = Array.from({ length: 25 }, (_, i) => ({
      message: message("t.n", [i]),
      options: { queue: i < 21 ? a : b },
    }));
    await publishAll(transport, batch);
    // 21 on a: 10 + 10 + 1; 4 on b: one batch.
    expect(sqs.count("SendMessageBatch")).toBe(3);
    expect(sqs.count("SendMessage")).toBe(1);
    const consumer = consume(transport, [a], 1);
    for (let i = 0; i < 21; i++) await (await consumer.waitFor(i + 1))[i]!.ack();
    expect(consumer.received.map(argOf)).toEqual([...Array(21).keys()]);
  });

  it("publishBatch() names each message SQS refused, and sends the rest", async () => {
    const q = queue();
    const transport = connect({ createAttributes: { MaximumMessageSize: "4096" } });
    await transport.publish(message("t.warm"), { queue: q });
    const big = message("t.big", ["x".repeat(8_000)]);
    const batch = [0, 1, 2].map((i) => ({
      message: i === 1 ? big : message("t.small", [i]),
      options: { queue: q },
    }));
    const refused = await caught(() => publishAll(transport, batch));
    expect(isCeleryTsError(refused)).toBe(true);
    expect(refused).toMatchObject({ retryable: false });
    expect((refused as Error).message).toMatch(
      new RegExp(
        `^\\[celery-ts:sqs\\] 1 of 3 messages were not published .*task ${big.headers.id}: .*shorter than 4096`,
      ),
    );
    // The client publishes again only what is missing.
    expect(unsentOf(refused)).toEqual([batch[1]]);
    expect(await fauxqs.receiveRaw(q)).toHaveLength(3);
  });
});

describe("delayed delivery", () => {
  it("delays within 15 minutes with DelaySeconds", async () => {
    const q = queue();
    const transport = connect();
    const availableAt = Date.now() + 1_500;
    await transport.publish(message("t.later"), { queue: q, availableAt });
    expect(await attributesOf(q)).toMatchObject({
      ApproximateNumberOfMessages: "0",
      ApproximateNumberOfMessagesDelayed: "1",
    });
    const [later] = await consume(transport, [q]).waitFor(1);
    expect(Date.now()).toBeGreaterThanOrEqual(availableAt);
    expect(later?.redelivered).toBe(false);
    await later?.ack();
  });

  it("goes beyond the delay limit in hops: never early, delivered once", async () => {
    const q = queue();
    const sqs = countingClient();
    // A 1-second limit stands for SQS's 15 minutes; a copy left undeleted would be back within
    // the 2 s visibility timeout, inside the absence window below.
    const transport = connect({ client: sqs.client, maxDelay: 1, visibilityTimeout: 2 });
    const consumer = consume(transport, [q]);
    // The queue made and polled first: how long that takes on a loaded machine is not part of
    // the delay.
    await waitUntil(() => sqs.count("ReceiveMessage") > 0, {
      timeoutMs: 30_000,
      what: "the consumer to poll the queue",
    });
    const availableAt = Date.now() + 4_000;
    await transport.publish(message("t.much-later"), { queue: q, availableAt });
    const [later] = await consumer.waitFor(1, 30_000);
    expect(Date.now()).toBeGreaterThanOrEqual(availableAt);
    expect(later?.message?.headers.task).toBe("t.much-later");
    expect(later?.redelivered).toBe(false);
    // Each send waits at most the limit: the publish, then each copy received before it was due,
    // re-sent with the delay left. The first copy is back 1 s after the publish, 3 s before the
    // message is due: a consumer on a loaded machine has that long to see it and hop it on.
    const sends = sqs.sent.filter((sent) => sent.name === "SendMessage");
    expect(sends.map((sent) => sent.delaySeconds)).toEqual(sends.map(() => 1));
    expect(sends.length).toBeGreaterThanOrEqual(2);
    await later?.ack();
    // Every copy deleted: each hopped one, and the delivered one on its ack.
    const deletes = () => sqs.count("DeleteMessage") + sqs.count("DeleteMessageBatch");
    await waitUntil(() => deletes() >= sends.length, {
      timeoutMs: 10_000,
      what: `a delete of each of the ${sends.length} copies`,
    });
    await waitAbsenceWindow(transport); // a declared window: no other copy comes
    expect(consumer.received).toHaveLength(1);
  });

  it("holds a message on a FIFO queue (no per-message delay there) until it is due", async () => {
    const q = `${queue()}.fifo`;
    const sqs = countingClient();
    const transport = connect({ client: sqs.client });
    const availableAt = Date.now() + 2_000;
    await transport.publish(message("t.later"), { queue: q, availableAt });
    const [later] = await consume(transport, [q]).waitFor(1);
    expect(Date.now()).toBeGreaterThanOrEqual(availableAt);
    expect(later?.redelivered).toBe(false);
    expect(sqs.count("ChangeMessageVisibility")).toBe(1);
    await later?.ack();
  });
});

describe("FIFO queues", () => {
  it("deduplicates a task published twice (by its id), but not its retry", async () => {
    const q = `${queue()}.fifo`;
    const transport = connect();
    const id = randomUUID();
    await transport.publish(message("t.once", [], id), { queue: q });
    await transport.publish(message("t.once", [], id), { queue: q });
    await transport.publish(message("t.once", ["retry"], id, 1), { queue: q });
    const acks: Promise<void>[] = [];
    const consumer = collect(transport, [q], 10, (delivery) => acks.push(delivery.ack()));
    cleanup.push(() => consumer.stop());
    const [first, retry] = await consumer.waitFor(2);
    await Promise.all(acks);
    expect([idOf(first), idOf(retry)]).toEqual([id, id]);
    expect(argOf(retry)).toBe("retry");
    await sleep(1_000);
    expect(consumer.received).toHaveLength(2);
  });

  it("delivers a message group in order, one message at a time", async () => {
    const q = `${queue()}.fifo`;
    const transport = connect();
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => transport.publish(message("t.n", [i]), { queue: q })),
    );
    const order: unknown[] = [];
    const acks: Promise<void>[] = [];
    const consumer = collect(transport, [q], 10, (delivery) => {
      order.push(argOf(delivery));
      acks.push(sleep(10).then(() => delivery.ack()));
    });
    cleanup.push(() => consumer.stop());
    await consumer.waitFor(8);
    await Promise.all(acks);
    expect(order).toEqual([...Array(8).keys()]);
  });

  it("takes the group id from the option, or from the message as kombu does", async () => {
    const q = `${queue()}.fifo`;
    const transport = connect({ messageGroupId: (wire) => String(wire.headers.task) });
    await transport.publish(message("t.by-task"), { queue: q });
    const own = message("t.own");
    await transport.publish(
      { ...own, properties: { ...own.properties, MessageGroupId: "mine" } },
      { queue: q },
    );
    const groups = (await fauxqs.receiveRaw(q)).map((m: Message) => m.Attributes?.MessageGroupId);
    expect(groups.sort()).toEqual(["mine", "t.by-task"]);
  });
});

describe("predefined queues", () => {
  it("uses the given URLs and never creates or looks up a queue", async () => {
    const sqsName = `pre-${randomUUID()}`;
    const url = await fauxqs.queueUrl(sqsName);
    const sqs = countingClient();
    const transport = connect({ client: sqs.client, predefinedQueues: { celery: url } });
    await transport.connect();
    await transport.publish(message("t.pre"), { queue: "celery" });
    const [delivery] = await consume(transport, ["celery"]).waitFor(1);
    expect(delivery?.queue).toBe("celery");
    await delivery?.ack();
    expect(await transport.purge("celery")).toBe(0);
    expect(sqs.calls).not.toContain("CreateQueue");
    expect(sqs.calls).not.toContain("GetQueueUrl");
    expect(sqs.calls).not.toContain("ListQueues");
  });

  it("accepts kombu's keys, the prefixed SQS names", async () => {
    const prefix = `k${randomUUID().slice(0, 8)}-`;
    const url = await fauxqs.queueUrl(`${prefix}celery`);
    const transport = connect({
      queueNamePrefix: prefix,
      predefinedQueues: { [`${prefix}celery`]: url },
    });
    await transport.publish(message("t.kombu-key"), { queue: "celery" });
    expect(await fauxqs.receiveRaw(`${prefix}celery`)).toHaveLength(1);
  });

  it("says which queue is missing from predefinedQueues, or missing on SQS", async () => {
    const transport = connect({
      predefinedQueues: { celery: `${fauxqs.endpoint()}/000000000000/nobody-made-${randomUUID()}` },
    });
    const undefinedQueue = await caught(() => transport.publish(message(), { queue: "emails" }));
    expect(isCeleryTsError(undefinedQueue, "CONFIG")).toBe(true);
    expect((undefinedQueue as Error).message).toMatch(
      /"emails" is not in predefinedQueues \("celery"\)/,
    );
    for (const error of [
      await caught(() => transport.publish(message(), { queue: "celery" })),
      await caught(() => transport.connect()),
    ]) {
      expect(isCeleryTsError(error, "CONFIG")).toBe(true);
      expect((error as Error).message).toMatch(
        /the SQS queue "celery" \(SQS name "nobody-made-.*"\) does not exist/,
      );
    }
    const consuming = await caught(() =>
      transport.consume(["celery"], () => {}, {
        prefetch: 1,
        signal: new AbortController().signal,
      }),
    );
    expect(isCeleryTsError(consuming, "CONFIG")).toBe(true);
  });

  it("dead-letters to the given deadLetterUrl, and refuses to drop when there is none", async () => {
    const url = await fauxqs.queueUrl(`pre-${randomUUID()}`);
    const bare = await fauxqs.queueUrl(`pre-${randomUUID()}`);
    const deadName = `pre-dead-${randomUUID()}`;
    const deadLetterUrl = await fauxqs.queueUrl(deadName);
    const transport = connect({
      predefinedQueues: { celery: { url, deadLetterUrl }, bare },
    });
    await transport.publish(message("t.bad"), { queue: "celery" });
    await transport.publish(message("t.bad"), { queue: "bare" });
    const [a, b] = await consume(transport, ["celery", "bare"]).waitFor(2);
    const [fromCelery, fromBare] = a?.queue === "celery" ? [a, b] : [b, a];
    await fromCelery?.reject({ requeue: false, reason: "bad input" });
    const [letter] = (await transport.deadLetters?.("celery")) ?? [];
    expect(letter).toMatchObject({ queue: "celery", reason: "bad input" });
    const refused = await caught(async () => fromBare?.reject({ requeue: false, reason: "x" }));
    expect(isCeleryTsError(refused, "CONFIG")).toBe(true);
    expect((refused as Error).message).toMatch(/queue "bare": it has no dead-letter queue/);
  });
});

describe("dead letters", () => {
  it("moves a message rejected without requeue to <queue>-dlq, with its reason, and lists it without consuming it", async () => {
    const q = queue();
    const transport = connect();
    const sent = message("t.poison");
    await transport.publish(sent, { queue: q });
    const [delivery] = await consume(transport, [q]).waitFor(1);
    const before = Date.now();
    await delivery?.reject({ requeue: false, reason: "unknown task t.poison" });

    const [raw] = await fauxqs.receiveRaw(`${q}-dlq`, 0);
    expect(raw?.MessageAttributes).toMatchObject({
      "celery-ts.dead-reason": { DataType: "String", StringValue: "unknown task t.poison" },
      "celery-ts.dead-queue": { DataType: "String", StringValue: q },
    });
    // The body as it was on the queue: kombu's base64 envelope, ready to be redriven.
    const envelope = JSON.parse(Buffer.from(raw?.Body ?? "", "base64").toString()) as {
      headers: unknown;
    };
    expect(envelope.headers).toEqual(sent.headers);

    for (let i = 0; i < 2; i++) {
      const letters = (await transport.deadLetters?.(q)) ?? [];
      expect(letters).toHaveLength(1);
      expect(letters[0]?.reason).toBe("unknown task t.poison");
      expect(letters[0]?.rejectedAt).toBeGreaterThanOrEqual(before);
      expect(JSON.parse(letters[0]?.raw ?? "")).toMatchObject({ headers: { task: "t.poison" } });
    }
    expect(await transport.deadLetters?.(q, { limit: 0 })).toEqual([]);
    expect(await transport.deadLetters?.(queue())).toEqual([]);
    // Still on the dead-letter queue, visible.
    expect(await fauxqs.receiveRaw(`${q}-dlq`)).toHaveLength(1);
    // And gone from its queue.
    expect(await attributesOf(q)).toMatchObject({
      ApproximateNumberOfMessages: "0",
      ApproximateNumberOfMessagesNotVisible: "0",
    });
  });

  it("keeps every dead letter of a FIFO queue listable", async () => {
    const q = `${queue()}.fifo`;
    const transport = connect();
    for (let i = 0; i < 3; i++) await transport.publish(message("t.n", [i]), { queue: q });
    const rejected: Promise<void>[] = [];
    const consumer = collect(transport, [q], 10, (delivery) =>
      rejected.push(delivery.reject({ requeue: false, reason: `no ${String(argOf(delivery))}` })),
    );
    cleanup.push(() => consumer.stop());
    await consumer.waitFor(3);
    await Promise.all(rejected);
    const letters = (await transport.deadLetters?.(q)) ?? [];
    expect(letters.map((letter) => letter.reason).sort()).toEqual(["no 0", "no 1", "no 2"]);
    expect(await attributesOf(`${q.slice(0, -".fifo".length)}-dlq.fifo`)).toMatchObject({
      FifoQueue: "true",
    });
  });

  it("creates queues with a redrive policy with maxReceiveCount, and lists what SQS moved", async () => {
    const q = queue();
    const transport = connect({ maxReceiveCount: 1 });
    await transport.publish(message("t.crashy"), { queue: q });
    const dlqUrl = (await fauxqs.admin().send(new GetQueueUrlCommand({ QueueName: `${q}-dlq` })))
      .QueueUrl;
    const policy = JSON.parse((await attributesOf(q)).RedrivePolicy ?? "{}") as Record<
      string,
      unknown
    >;
    expect(policy).toEqual({
      deadLetterTargetArn: (await attributesOf(`${q}-dlq`)).QueueArn,
      maxReceiveCount: 1,
    });
    expect(dlqUrl).toBeDefined();
    const consumer = consume(transport, [q]);
    const [first] = await consumer.waitFor(1);
    await first?.reject({ requeue: true });
    // The second receive is over the limit: SQS moves it instead of delivering it (waited for,
    // bounded: a loaded machine may take longer than a fixed pause).
    const letters = await waitUntil(
      async () => {
        const listed = (await transport.deadLetters?.(q)) ?? [];
        return listed.length > 0 && listed;
      },
      { timeoutMs: 15_000, what: "SQS to move the message to the dead-letter queue" },
    );
    expect(letters).toHaveLength(1);
    expect(consumer.received).toHaveLength(1);
    expect(letters[0]?.reason).toMatch(/redrive policy/);
  });
});

describe("lifecycle", () => {
  it("a graceful close hands outstanding messages back at once", async () => {
    const q = queue();
    const first = connect({ visibilityTimeout: 60 });
    await first.publish(message(), { queue: q });
    await consume(first, [q]).waitFor(1);
    await first.close();
    const started = Date.now();
    const [again] = await consume(connect({ visibilityTimeout: 60 }), [q]).waitFor(1);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(again?.redelivered).toBe(true);
    await again?.ack();
  });

  it("fails every call after close() with CLOSED", async () => {
    const q = queue();
    const transport = connect();
    await transport.publish(message(), { queue: q });
    const [delivery] = await consume(transport, [q]).waitFor(1);
    await transport.close();
    const calls: (() => Promise<unknown>)[] = [
      () => transport.publish(message(), { queue: q }),
      () => transport.consume([q], () => {}, { prefetch: 1, signal: new AbortController().signal }),
      () => transport.purge(q),
      () => transport.connect(),
      async () => delivery?.ack(),
      async () => delivery?.reject({ requeue: true }),
      async () => transport.deadLetters?.(q),
    ];
    for (const call of calls) expect(isCeleryTsError(await caught(call), "CLOSED")).toBe(true);
  });

  it("purges waiting and delayed messages, and says how many", async () => {
    const q = queue();
    const transport = connect();
    await transport.publish(message(), { queue: q });
    await transport.publish(message(), { queue: q });
    await transport.publish(message(), { queue: q, availableAt: Date.now() + 60_000 });
    expect(await transport.purge(q)).toBe(3);
    expect(await attributesOf(q)).toMatchObject({
      ApproximateNumberOfMessages: "0",
      ApproximateNumberOfMessagesDelayed: "0",
    });
    expect(await transport.purge(queue())).toBe(0);
  });

  it("recreates a queue deleted behind its back, for consumers and producers", async () => {
    const q = queue();
    const transport = connect();
    await transport.publish(message("t.before"), { queue: q });
    const consumer = collect(transport, [q], 10, (delivery) => void delivery.ack().catch(() => {}));
    cleanup.push(() => consumer.stop());
    await consumer.waitFor(1);
    await fauxqs.admin().send(new DeleteQueueCommand({ QueueUrl: await fauxqs.queueUrl(q) }));
    // The first publish may still use the cached URL and fail, naming the queue.
    const first = await transport.publish(message("t.after"), { queue: q }).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (first !== undefined) {
      expect(isCeleryTsError(first, "CONFIG")).toBe(true);
      expect((first as Error).message).toContain(`the SQS queue "${q}" does not exist`);
      await transport.publish(message("t.after"), { queue: q });
    }
    const [, after] = await consumer.waitFor(2);
    expect(after?.message?.headers.task).toBe("t.after");
  });

  it("works from a URL through core's resolveTransport", async () => {
    const prefix = `u${randomUUID().slice(0, 8)}-`;
    const host = fauxqs.endpoint().replace(/^http:\/\//, "");
    const transport = await resolveTransport(
      `sqs://test:test@${host}?region=${REGION}&queue_name_prefix=${prefix}` +
        "&visibility_timeout=5&wait_time_seconds=1",
    );
    cleanup.push(() => transport.close());
    expect(transport.name).toBe("sqs");
    await transport.publish(message("t.url"), { queue: "celery" });
    const [delivery] = await consume(transport, ["celery"]).waitFor(1);
    expect(delivery?.message?.headers.task).toBe("t.url");
    await delivery?.ack();
    expect(await attributesOf(`${prefix}celery`)).toMatchObject({ VisibilityTimeout: "5" });
  });
});
