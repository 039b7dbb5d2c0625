import { decodeTaskMessage, type Delivery } from "@celery-ts/core";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { internalsOf } from "../src/internal/registry.ts";
import { closeConnectionFromServer, rabbitAdmin, unique, until } from "./support/rabbit.ts";
import { firstReal, message, transports, untilBroadcastBound } from "./support/transports.ts";

vi.setConfig({ testTimeout: 30_000 });

const admin = rabbitAdmin();
const delayPrefix = unique("celery_ts.delay.test");
admin.trackDelayTopology(delayPrefix);
const t = transports(admin, { delayPrefix });
afterEach(() => t.closeAll());
afterAll(() => admin.cleanup());

/** Records when each delivery arrived, by its first argument. */
function arrivals(received: Delivery[]) {
  const at = new Map<unknown, number>();
  return {
    at,
    note() {
      for (const delivery of received) {
        const arg = decodeTaskMessage(delivery.message!).args[0];
        if (!at.has(arg)) at.set(arg, Date.now());
      }
    },
  };
}

describe("native delayed delivery (TTL levels, no plugin)", () => {
  it("delivers each message at or after its time, never before, whatever the publish order", async () => {
    const queue = unique("delayed");
    const producer = t.connect();
    const consumer = t.consume(t.connect(), [queue], 20);
    // The first delayed publish of a connection declares the levels: not part of the timing.
    await producer.publish(message({ args: ["warm-up"] }), { queue, availableAt: Date.now() + 1 });
    await consumer.waitFor(1);
    consumer.received.splice(0);
    const seen = arrivals(consumer.received);
    const timer = setInterval(() => seen.note(), 2);
    const base = Date.now() + 200;
    const offsets = [1_300, 100, 600, 0, 300, 900, 200];
    const due = new Map<number, number>();
    for (const offset of offsets) {
      due.set(offset, base + offset);
      await producer.publish(message({ args: [offset] }), { queue, availableAt: base + offset });
    }
    try {
      await consumer.waitFor(offsets.length, 20_000);
      seen.note();
    } finally {
      clearInterval(timer);
    }
    for (const offset of offsets) {
      const arrived = seen.at.get(offset)!;
      expect(arrived, `message due at +${offset} ms`).toBeGreaterThanOrEqual(due.get(offset)!);
    }
    // How late each arrives is not asserted (a loaded machine delays any hop; a 1 s bound failed
    // under load), nor the order of messages due close together (each takes its own level hops).
    // That a message waits its delay exactly, not a longer level's, is what the routing key
    // spells in binary (delay.test.ts); here: every message arrives, none before its time.
    expect(await admin.messageCount(queue)).toBe(0);
  });

  it("keeps the message's headers and properties, without RabbitMQ's x-death or an expiration", async () => {
    const queue = unique("delayed-intact");
    const producer = t.connect();
    const sent = message({
      args: ["intact"],
      expires: new Date(Date.now() + 60_000),
      replyTo: "r",
    });
    expect(sent.properties.expiration).toBeDefined();
    await producer.publish(sent, { queue, availableAt: Date.now() + 150 });
    const [delivery] = await t.consume(t.connect(), [queue]).waitFor(1);
    expect(delivery?.message?.body).toBe(sent.body);
    expect(delivery?.message?.headers).toEqual(sent.headers);
    const { expiration: _expiration, ...kept } = sent.properties;
    expect(delivery?.message?.properties).toMatchObject(kept);
    // An expiration would have made a level expire it early; the worker revokes by `expires`.
    expect(delivery?.message?.properties.expiration).toBeUndefined();
    expect(delivery?.redelivered).toBe(false);
  });

  it("loses nothing when the publisher goes away and the consumer's connection drops meanwhile", async () => {
    const queue = unique("delayed-durable");
    const producer = t.connect();
    const availableAt = Date.now() + 1_500;
    await producer.publish(message({ args: ["later"] }), { queue, availableAt });
    await producer.close();
    const transport = t.connect({ reconnectInitialDelay: 0.05 });
    const consumer = t.consume(transport, [queue]);
    await until(() => internalsOf(transport)!.manager.session !== undefined);
    await closeConnectionFromServer(internalsOf(transport)!.manager.session!.localPort);
    const [delivery] = await consumer.waitFor(1, 10_000);
    expect(Date.now()).toBeGreaterThanOrEqual(availableAt);
    expect(decodeTaskMessage(delivery!.message!).args).toEqual(["later"]);
  });

  it('with delayedDelivery: "worker", delivers at once for the worker to hold', async () => {
    const queue = unique("delayed-worker");
    const transport = t.connect({ delayedDelivery: "worker" });
    await transport.publish(message(), { queue, availableAt: Date.now() + 60_000 });
    // Bounded well below the 60 s delay: delivered at once, not after it.
    await t.consume(transport, [queue]).waitFor(1, 15_000);
  });

  it("delays broadcast messages to every consumer", async () => {
    const name = unique("delayed-broadcast");
    admin.trackExchange(name);
    const options = { queues: { [name]: { broadcast: true } } };
    const a = t.consume(t.connect(options), [name]);
    const b = t.consume(t.connect(options), [name]);
    const producer = t.connect(options);
    await untilBroadcastBound(producer, name, [a, b]);
    const availableAt = Date.now() + 300;
    await producer.publish(message(), { queue: name, availableAt });
    await firstReal(a);
    await firstReal(b);
    expect(Date.now()).toBeGreaterThanOrEqual(availableAt);
  });
});
