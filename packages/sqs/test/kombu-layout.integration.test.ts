import { randomUUID } from "node:crypto";
import { GetQueueAttributesCommand, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  type Delivery,
  type Transport,
} from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
import { createSqsTransport, type SqsTransportOptions } from "../src/index.ts";
import { useFauxqs } from "./support/fauxqs.ts";

const fauxqs = useFauxqs();
const open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((transport) => transport.close()));
});

const connect = (options: SqsTransportOptions = {}): Transport => {
  const transport = createSqsTransport(fauxqs.options(options));
  open.push(transport);
  return transport;
};
const unique = (): string => randomUUID().slice(0, 8);

/** The first delivery on `queue`, then stops consuming. */
async function receiveOne(transport: Transport, queue: string): Promise<Delivery> {
  const stop = new AbortController();
  let resolveDelivery!: (delivery: Delivery) => void;
  const delivered = new Promise<Delivery>((resolve) => (resolveDelivery = resolve));
  const consuming = transport.consume([queue], resolveDelivery, {
    prefetch: 1,
    signal: stop.signal,
  });
  const delivery = await delivered;
  stop.abort();
  await consuming;
  return delivery;
}

// What Python Celery 5.2.6 queued for tasks.add(2, b=5), captured from kombu's virtual transport
// (core's golden fixture redis-queue-message-kwargs.json): SQS carries the same envelope.
const KOMBU_ENVELOPE = JSON.stringify({
  body: "W1syXSwgeyJiIjogNX0sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d",
  "content-encoding": "utf-8",
  "content-type": "application/json",
  headers: {
    lang: "py",
    task: "tasks.add",
    id: "a7f682ed-3a24-4118-bc65-518f4eec0f86",
    shadow: null,
    eta: null,
    expires: null,
    group: null,
    group_index: null,
    retries: 0,
    timelimit: [null, null],
    root_id: "a7f682ed-3a24-4118-bc65-518f4eec0f86",
    parent_id: null,
    argsrepr: "(2,)",
    kwargsrepr: "{'b': 5}",
    origin: "gen10519@vm",
    ignore_result: false,
  },
  properties: {
    correlation_id: "a7f682ed-3a24-4118-bc65-518f4eec0f86",
    reply_to: "067d14c3-6a77-3bb0-bc4a-0dd2661350e9",
    delivery_mode: 2,
    delivery_info: { exchange: "", routing_key: "celery" },
    priority: 0,
    body_encoding: "base64",
    delivery_tag: "ebb7ca95-f6df-454a-b636-563f44c2ee86",
  },
});

describe("the message body, as kombu's SQS transport writes it", () => {
  it("is base64 of the JSON envelope, whose body is base64 of the Celery body", async () => {
    const queue = `layout-${unique()}`;
    const sent = encodeTaskMessage(
      createTaskMessage({ task: "tasks.add", args: [2], kwargs: { b: 5 }, replyTo: randomUUID() }),
    );
    await connect().publish(sent, { queue });
    const [raw] = await fauxqs.receiveRaw(queue);
    const body = raw?.Body ?? "";
    expect(body).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    const envelope = JSON.parse(Buffer.from(body, "base64").toString("utf8")) as Record<
      string,
      Record<string, unknown>
    >;
    // The same keys as kombu's envelope, in both the envelope and its properties.
    const kombu = JSON.parse(KOMBU_ENVELOPE) as Record<string, Record<string, unknown>>;
    expect(Object.keys(envelope).sort()).toEqual(Object.keys(kombu).sort());
    expect(Object.keys(envelope.properties ?? {}).sort()).toEqual(
      Object.keys(kombu.properties ?? {}).sort(),
    );
    expect(Buffer.from(String(envelope.body), "base64").toString("utf8")).toBe(sent.body);
    expect(envelope.headers).toEqual(sent.headers);
    expect(envelope.properties).toMatchObject({
      body_encoding: "base64",
      delivery_info: { exchange: "", routing_key: queue },
      priority: 0,
      correlation_id: sent.headers.id,
    });
    expect(envelope.properties?.delivery_tag).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("is the JSON envelope itself with base64Encoding: false (sqs_base64_encoding = False)", async () => {
    const queue = `layout-${unique()}`;
    const sent = encodeTaskMessage(createTaskMessage({ task: "tasks.add", args: [1] }));
    await connect({ base64Encoding: false }).publish(sent, { queue });
    const [raw] = await fauxqs.receiveRaw(queue);
    expect(JSON.parse(raw?.Body ?? "")).toMatchObject({ headers: { task: "tasks.add" } });
  });

  it.each([
    ["base64-encoded (kombu's default)", Buffer.from(KOMBU_ENVELOPE).toString("base64")],
    ["as plain JSON (sqs_base64_encoding = False)", KOMBU_ENVELOPE],
  ])("is read when Python Celery wrote it %s", async (_case, body) => {
    const queue = `layout-${unique()}`;
    await fauxqs.sendRaw(queue, body);
    const delivery = await receiveOne(connect(), queue);
    expect(delivery.message).toBeDefined();
    const task = decodeTaskMessage(delivery.message!);
    expect(task.headers).toMatchObject({
      task: "tasks.add",
      id: "a7f682ed-3a24-4118-bc65-518f4eec0f86",
    });
    expect(task.args).toEqual([2]);
    expect(task.kwargs).toEqual({ b: 5 });
    expect(delivery.redelivered).toBe(false);
    await delivery.ack();
  });
});

describe("queue names, as kombu's SQS transport chooses them", () => {
  it("prefixes and translates: prefix + name, `.` to `-`, other punctuation to `_`", async () => {
    const prefix = `p${unique()}.`;
    await connect({ queueNamePrefix: prefix, visibilityTimeout: 77 }).publish(
      encodeTaskMessage(createTaskMessage({ task: "t" })),
      { queue: "tasks.email:high" },
    );
    const sqsName = `${prefix.slice(0, -1)}-tasks-email_high`;
    const { QueueUrl } = await fauxqs.admin().send(new GetQueueUrlCommand({ QueueName: sqsName }));
    expect(QueueUrl).toMatch(new RegExp(`/${sqsName}$`));
    // Created as kombu creates queues: with the transport's visibility timeout.
    const { Attributes } = await fauxqs
      .admin()
      .send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["All"] }));
    expect(Attributes).toMatchObject({ VisibilityTimeout: "77", ApproximateNumberOfMessages: "1" });
    expect(Attributes?.RedrivePolicy).toBeUndefined();
  });

  it("keeps the .fifo suffix, creates a FIFO queue, and sends kombu's FIFO fields", async () => {
    const prefix = `p${unique()}.`;
    const message = encodeTaskMessage(createTaskMessage({ task: "t" }));
    await connect({ queueNamePrefix: prefix }).publish(message, { queue: "jobs.fifo" });
    const sqsName = `${prefix.slice(0, -1)}-jobs.fifo`;
    const [raw] = await fauxqs.receiveRaw(sqsName);
    expect(raw?.Attributes).toMatchObject({
      MessageGroupId: "default",
      MessageDeduplicationId: message.headers.id,
    });
  });
});
