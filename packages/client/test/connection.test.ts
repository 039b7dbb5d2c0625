import { randomUUID } from "node:crypto";
import {
  MemoryBroker,
  createMemoryTransport,
  declareTask,
  decodeTaskMessage,
  isCeleryTsError,
  resolveTransport,
  type Delivery,
  type Transport,
} from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { createClient } from "../src/index.ts";

const add = declareTask<[number, number], number>("tasks.add");

/** Receives one message from `queue` as a worker on its own connection would. */
async function receiveOne(transport: Transport, queue = "celery") {
  const controller = new AbortController();
  let delivery: Delivery | undefined;
  await transport.consume(
    [queue],
    (received) => {
      delivery = received;
      controller.abort();
    },
    { prefetch: 1, signal: controller.signal },
  );
  if (!delivery?.message) throw new Error("no message received");
  await delivery.ack();
  return decodeTaskMessage(delivery.message);
}

describe("broker and backend URLs", () => {
  it("resolves a memory:// broker on first use, shared with others on the same URL", async () => {
    const url = `memory://client-${randomUUID()}`;
    const client = createClient({ broker: url, backend: "memory://results" });
    const result = await client.task(add).delay(2, 3);
    const worker = await resolveTransport(url);
    expect((await receiveOne(worker)).headers.id).toBe(result.id);
    expect(await result.status()).toBe("PENDING");
    await Promise.all([client.close(), worker.close()]);
  });

  it("takes the broker and backend from CELERY_BROKER_URL and CELERY_RESULT_BACKEND when not given", async () => {
    const url = `memory://env-${randomUUID()}`;
    const saved = { ...process.env };
    process.env.CELERY_BROKER_URL = url;
    process.env.CELERY_RESULT_BACKEND = `memory://env-results-${randomUUID()}`;
    try {
      const client = createClient();
      const result = await client.task(add).delay(2, 3);
      const worker = await resolveTransport(url);
      expect((await receiveOne(worker)).headers.id).toBe(result.id);
      expect(await result.status()).toBe("PENDING"); // reading a state needs the backend
      await Promise.all([client.close(), worker.close()]);
      // What is given wins over the environment.
      const givenUrl = `memory://given-${randomUUID()}`;
      const given = createClient({ broker: givenUrl });
      const sent = await given.task(add).delay(1, 1);
      const givenWorker = await resolveTransport(givenUrl);
      expect((await receiveOne(givenWorker)).headers.id).toBe(sent.id);
      await Promise.all([given.close(), givenWorker.close()]);
    } finally {
      process.env = saved;
    }
  });

  it("names CELERY_BROKER_URL when there is no broker at all", () => {
    const saved = process.env.CELERY_BROKER_URL;
    delete process.env.CELERY_BROKER_URL;
    try {
      expect(() => createClient()).toThrow(/no broker: .* or set CELERY_BROKER_URL/);
    } finally {
      if (saved !== undefined) process.env.CELERY_BROKER_URL = saved;
    }
  });

  it("reports an unknown scheme as a CONFIG error on first use, not at creation", async () => {
    const client = createClient({ broker: "kafka://127.0.0.1:9092" });
    const error: unknown = await client
      .task(add)
      .delay(2, 3)
      .catch((e) => e);
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toContain('unknown URL scheme "kafka://"');
    await expect(client.connect()).rejects.toMatchObject({ code: "CONFIG" });
    await client.close();
  });

  it("connect() resolves and connects eagerly, and reports a bad backend URL", async () => {
    const ok = createClient({ broker: `memory://client-${randomUUID()}`, backend: "memory://" });
    await ok.connect();
    await ok.connect();
    await ok.close();

    const bad = createClient({ broker: createMemoryTransport(), backend: "not a url" });
    await expect(bad.connect()).rejects.toMatchObject({ code: "CONFIG" });
    await bad.close();
  });
});

describe("close()", () => {
  it("is idempotent, and afterwards every use is a CLOSED error", async () => {
    const client = createClient({ broker: createMemoryTransport(), backend: "memory://" });
    const handle = client.task(add);
    const earlier = client.asyncResult("some-id");
    await Promise.all([client.close(), client.close()]);
    await client.close();

    const uses: [string, () => unknown][] = [
      ["delay", () => handle.delay(2, 3)],
      ["applyAsync", () => handle.applyAsync([2, 3])],
      ["sendTask", () => client.sendTask("tasks.add")],
      ["connect", () => client.connect()],
      ["status", () => earlier.status()],
      ["get", () => earlier.get()],
      ["task", () => client.task(add)],
      ["asyncResult", () => client.asyncResult("other-id")],
    ];
    for (const [name, use] of uses) {
      const error = await (async () => use())().catch((e: unknown) => e);
      expect(isCeleryTsError(error, "CLOSED"), name).toBe(true);
    }
  });

  it("waits for sends under way, and leaves a transport it was given open", async () => {
    const broker = new MemoryBroker();
    const inner = createMemoryTransport({ broker });
    const slow: Transport = {
      ...inner,
      async publish(message, options) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        await inner.publish(message, options);
      },
    };
    const client = createClient({ broker: slow });
    const sending = client.task(add).delay(2, 3);
    await client.close();
    const result = await sending;
    expect(await receiveOne(inner)).toMatchObject({ headers: { id: result.id } });
    await inner.close();
  });
});
