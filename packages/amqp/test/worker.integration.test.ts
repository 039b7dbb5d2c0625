import { createMemoryBackend, currentTask, defineTask } from "@celery-ts/core";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
// Not yet devDependencies of this package (see the README): imported from the workspace.
import { createClient } from "@celery-ts/client";
import { createWorker } from "@celery-ts/worker";
import { createAmqpTransport, type AmqpTransportOptions } from "../src/index.ts";
import { BROKER_URL, rabbitAdmin, sleep, unique, until } from "./support/rabbit.ts";

// The celery-ts worker and client on RabbitMQ, results in memory (one process).
vi.setConfig({ testTimeout: 30_000 });

const admin = rabbitAdmin();
const delayPrefix = unique("celery_ts.delay.worker");
admin.trackDelayTopology(delayPrefix);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => admin.cleanup());

function setup(queue: string, options: AmqpTransportOptions = {}) {
  admin.trackCeleryQueue(queue);
  const transport = createAmqpTransport({ url: BROKER_URL, delayPrefix, ...options });
  const backend = createMemoryBackend();
  const client = createClient({ broker: transport, backend });
  cleanups.push(async () => {
    await client.close();
    await transport.close();
  });
  return { transport, backend, client };
}

describe("the celery-ts worker on RabbitMQ", () => {
  it.each([
    ["global QoS", true],
    ["per-consumer QoS (RabbitMQ 4.3+)", false],
  ])("holds ETA messages without starving due work, with %s", async (_mode, globalQos) => {
    const queue = unique("worker-eta");
    // "worker": eta messages arrive at once and the worker holds them, as from a Python producer.
    const { transport, backend, client } = setup(queue, { delayedDelivery: "worker", globalQos });
    const ran: string[] = [];
    const note = defineTask(
      "amqp.note",
      (label: string) => {
        ran.push(label);
        return label;
      },
      { queue },
    );
    const worker = createWorker({
      broker: transport,
      backend,
      tasks: [note],
      queues: [queue],
      concurrency: 1,
      prefetch: 1,
      shutdownTimeout: 5,
    });
    await worker.start();
    cleanups.push(() => worker.stop());
    const handle = client.task(note);
    // Due in 10 s: room for a, b and c to run first on a loaded machine.
    const later = await handle.applyAsync(["later"], { countdown: 10 });
    // The worker holds it (unacknowledged, so no longer ready in the queue) before due work comes.
    await until(
      async () => (await admin.messageCount(queue)) === 0,
      10_000,
      "the worker to hold it",
    );
    const now = await Promise.all(["a", "b", "c"].map((label) => handle.delay(label)));
    await Promise.all(now.map((result) => result.get({ timeout: 9 })));
    // With prefetch 1 and the held message not counted, due work would wait behind it.
    expect(ran).toEqual(["a", "b", "c"]);
    expect(await later.get({ timeout: 20 })).toBe("later");
    expect(ran).toEqual(["a", "b", "c", "later"]);
  });

  it("start() resolves once the consumers are live: a task sent at once to a broadcast queue runs", async () => {
    const queue = unique("worker-live");
    admin.trackExchange(queue);
    // A broadcast queue is the worker's own, made when it consumes: a message sent before it
    // exists is dropped by RabbitMQ, so this fails if start() resolved before basic.consume-ok.
    const options = { queues: { [queue]: { broadcast: true } } };
    const { transport, backend } = setup(queue, options);
    // The producer on a connection of its own, open before the worker starts, so that its
    // publish is not queued behind the worker's consumer setup on one connection.
    const producer = setup(queue, options).transport;
    const client = createClient({ broker: producer, backend });
    cleanups.push(() => client.close());
    await producer.connect();
    const echo = defineTask("amqp.echo", (text: string) => text, { queue });
    await client.task(echo).delay("before"); // declares the exchange; no queue gets it
    const worker = createWorker({ broker: transport, backend, tasks: [echo], queues: [queue] });
    await worker.start();
    cleanups.push(() => worker.stop());
    const result = await client.task(echo).delay("live");
    expect(await result.get({ timeout: 10 })).toBe("live");
  });

  it("retries through the delay queues and acknowledges the old message", async () => {
    const queue = unique("worker-retry");
    const { transport, backend, client } = setup(queue);
    const attempts: number[] = [];
    const flaky = defineTask(
      "amqp.flaky",
      () => {
        attempts.push(Date.now());
        if (currentTask().retries < 2) currentTask().retry({ countdown: 0.3 });
        return currentTask().retries;
      },
      { queue },
    );
    const worker = createWorker({
      broker: transport,
      backend,
      tasks: [flaky],
      queues: [queue],
      shutdownTimeout: 5,
    });
    await worker.start();
    cleanups.push(() => worker.stop());
    const result = await client.task(flaky).delay();
    expect(await result.get({ timeout: 10 })).toBe(2);
    expect(attempts).toHaveLength(3);
    expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(300);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(300);
    await sleep(100);
    expect(await admin.messageCount(queue)).toBe(0);
  });

  it("dead-letters a JSON message that does not parse, with the worker's reason", async () => {
    const queue = unique("worker-bad-json");
    const exchange = unique("worker-dlx");
    admin.trackExchange(exchange);
    const { transport, backend } = setup(queue, { deadLetter: { exchange } });
    const worker = createWorker({
      broker: transport,
      backend,
      tasks: [],
      queues: [queue],
      shutdownTimeout: 5,
    });
    await worker.start();
    cleanups.push(() => worker.stop());
    // On AMQP the frame is the envelope: a body that is not JSON is still a message, and the
    // worker's decoding is what rejects it.
    await until(() => admin.queueExists(queue), 5_000, "the worker to declare its queue");
    await admin.withChannel(async (channel) => {
      channel.sendToQueue(queue, Buffer.from("{not json"), {
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: { task: "amqp.t", id: "bad-1" },
      });
    });
    let dead: Awaited<ReturnType<NonNullable<typeof transport.deadLetters>>> = [];
    await until(async () => {
      dead = await transport.deadLetters!(queue);
      return dead.length === 1;
    }, 10_000);
    expect(dead[0]).toMatchObject({ queue, raw: "{not json" });
    expect(dead[0]!.reason).toMatch(/malformed task message: body is not valid JSON/);
  });
});
