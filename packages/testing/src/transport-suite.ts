import { randomUUID } from "node:crypto";
import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  type Delivery,
  type Transport,
  type WireMessage,
} from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";

/** How the suite reaches one implementation. */
export interface TransportHarness {
  /** A new connection to the same broker (server, file or in-memory broker). */
  create(): Transport | Promise<Transport>;
  /** Puts raw bytes on a queue as a foreign or broken producer would. */
  injectRaw(queue: string, raw: string): Promise<void>;
  /** How long after a consumer died its unacknowledged messages come back, at the most. */
  redeliveryWithinMs: number;
}

const WAIT_MS = 5_000;

function message(task = "conformance.echo", args: unknown[] = []): WireMessage {
  return encodeTaskMessage(createTaskMessage({ task, args }));
}

function idOf(delivery: Delivery): string {
  if (!delivery.message) throw new Error(`expected a message, got: ${delivery.error.message}`);
  return decodeTaskMessage(delivery.message).headers.id;
}

function argOf(delivery: Delivery): unknown {
  if (!delivery.message) throw new Error(`expected a message, got: ${delivery.error.message}`);
  return decodeTaskMessage(delivery.message).args[0];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects the deliveries of a running consumer; `waitFor(n)` waits until there are n. */
class Consumer {
  readonly received: Delivery[] = [];
  private readonly controller = new AbortController();
  private waiters: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(
    transport: Transport,
    queues: string[],
    prefetch: number,
    onDelivery?: (delivery: Delivery) => void,
  ) {
    this.done = transport.consume(
      queues,
      (delivery) => {
        this.received.push(delivery);
        onDelivery?.(delivery);
        this.waiters.forEach((wake) => wake());
        this.waiters = [];
      },
      { prefetch, signal: this.controller.signal },
    );
  }

  async waitFor(count: number, timeoutMs = WAIT_MS): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `expected ${count} deliveries within ${timeoutMs} ms, got ${this.received.length}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.slice(0, count);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}

/**
 * The behaviour every transport must have. Call it from a test file with a harness for the
 * implementation; groups that depend on a capability run when the transport claims it.
 */
export function transportConformance(name: string, harness: TransportHarness): void {
  describe(`Transport conformance: ${name}`, () => {
    const open: Transport[] = [];
    const consumers: Consumer[] = [];

    const connect = async (): Promise<Transport> => {
      const transport = await harness.create();
      open.push(transport);
      await transport.connect();
      return transport;
    };
    const consume = (
      transport: Transport,
      queues: string[],
      prefetch = 10,
      onDelivery?: (delivery: Delivery) => void,
    ): Consumer => {
      const consumer = new Consumer(transport, queues, prefetch, onDelivery);
      consumers.push(consumer);
      return consumer;
    };
    const queue = (): string => `conformance-${randomUUID()}`;

    afterEach(async () => {
      await Promise.all(consumers.splice(0).map((consumer) => consumer.stop()));
      await Promise.all(open.splice(0).map((transport) => transport.close()));
    });

    it("delivers a published message with its body, headers and properties intact", async () => {
      const transport = await connect();
      const q = queue();
      const sent = encodeTaskMessage(
        createTaskMessage({
          task: "conformance.echo",
          args: [1, "zwei", { drei: [3] }],
          kwargs: { é: "ü" },
        }),
      );
      await transport.publish(sent, { queue: q });
      const [delivery] = await consume(transport, [q]).waitFor(1);
      expect(delivery?.queue).toBe(q);
      expect(delivery?.redelivered).toBe(false);
      expect(delivery?.message?.body).toBe(sent.body);
      expect(delivery?.message?.contentType).toBe(sent.contentType);
      expect(delivery?.message?.contentEncoding).toBe(sent.contentEncoding);
      expect(delivery?.message?.headers).toEqual(sent.headers);
      expect(delivery?.message?.properties).toMatchObject(sent.properties);
      await delivery?.ack();
    });

    it("forgets an acknowledged message", async () => {
      const transport = await connect();
      const q = queue();
      await transport.publish(message(), { queue: q });
      const consumer = consume(transport, [q]);
      const [delivery] = await consumer.waitFor(1);
      await delivery?.ack();
      await consumer.stop();
      await transport.close();
      const other = await connect();
      const late = consume(other, [q]);
      await sleep(300);
      expect(late.received).toHaveLength(0);
      expect(await other.purge(q)).toBe(0);
    });

    it("redelivers a message rejected with requeue, marked as redelivered", async () => {
      const transport = await connect();
      const q = queue();
      const sent = message();
      await transport.publish(sent, { queue: q });
      const consumer = consume(transport, [q]);
      const [first] = await consumer.waitFor(1);
      await first?.reject({ requeue: true });
      const [, second] = await consumer.waitFor(2);
      expect(second?.redelivered).toBe(true);
      expect(second?.message?.body).toBe(sent.body);
      expect(second?.deliveryTag).not.toBe(first?.deliveryTag);
      await second?.ack();
    });

    it("does not redeliver a message rejected without requeue", async () => {
      const transport = await connect();
      const q = queue();
      await transport.publish(message(), { queue: q });
      const consumer = consume(transport, [q]);
      const [delivery] = await consumer.waitFor(1);
      await delivery?.reject({ requeue: false, reason: "conformance says no" });
      await sleep(300);
      expect(consumer.received).toHaveLength(1);
      if (transport.capabilities.deadLetter) {
        const dead = await transport.deadLetters?.(q);
        expect(dead).toHaveLength(1);
        expect(dead?.[0]?.reason).toBe("conformance says no");
        expect(dead?.[0]?.queue).toBe(q);
      }
    });

    it("redelivers the unacknowledged messages of a consumer that died", async () => {
      const doomed = await connect();
      const q = queue();
      const sent = message();
      await doomed.publish(sent, { queue: q });
      const [taken] = await consume(doomed, [q]).waitFor(1);
      expect(taken).toBeDefined();
      await doomed.close({ force: true });

      const survivor = await connect();
      const [again] = await consume(survivor, [q]).waitFor(1, harness.redeliveryWithinMs + WAIT_MS);
      expect(again?.redelivered).toBe(true);
      expect(again?.message?.body).toBe(sent.body);
      await again?.ack();
    });

    it("keeps at most `prefetch` deliveries outstanding", async () => {
      const transport = await connect();
      const q = queue();
      for (let i = 0; i < 10; i++)
        await transport.publish(message("conformance.n", [i]), { queue: q });
      const consumer = consume(transport, [q], 3);
      await consumer.waitFor(3);
      await sleep(300);
      expect(consumer.received).toHaveLength(3);
      await consumer.received[0]?.ack();
      await consumer.waitFor(4);
      await sleep(300);
      expect(consumer.received).toHaveLength(4);
    });

    it("reads `prefetch` again as the consumer raises it", async () => {
      const transport = await connect();
      const q = queue();
      for (let i = 0; i < 4; i++)
        await transport.publish(message("conformance.n", [i]), { queue: q });
      let prefetch = 1;
      const received: Delivery[] = [];
      const stop = new AbortController();
      const consuming = transport.consume(
        [q],
        (delivery) => {
          received.push(delivery);
          // A worker holding an early message raises its prefetch, as Celery does for etas.
          prefetch = 3;
        },
        {
          get prefetch() {
            return prefetch;
          },
          signal: stop.signal,
        },
      );
      const deadline = Date.now() + WAIT_MS;
      while (received.length < 3 && Date.now() < deadline) await sleep(20);
      await sleep(300);
      stop.abort();
      await consuming;
      expect(received).toHaveLength(3);
    });

    it("delivers in publish order within one priority", async () => {
      const transport = await connect();
      const q = queue();
      for (let i = 0; i < 20; i++)
        await transport.publish(message("conformance.n", [i]), { queue: q });
      const consumer = consume(transport, [q], 1);
      const order: unknown[] = [];
      for (let i = 0; i < 20; i++) {
        const delivery = (await consumer.waitFor(i + 1))[i];
        order.push(argOf(delivery!));
        await delivery?.ack();
      }
      expect(order).toEqual([...Array(20).keys()]);
    });

    it("consumes from several queues", async () => {
      const transport = await connect();
      const [a, b] = [queue(), queue()];
      await transport.publish(message("conformance.n", ["a"]), { queue: a });
      await transport.publish(message("conformance.n", ["b"]), { queue: b });
      const deliveries = await consume(transport, [a, b]).waitFor(2);
      expect(Object.fromEntries(deliveries.map((d) => [String(argOf(d)), d.queue]))).toEqual({
        a,
        b,
      });
      await Promise.all(deliveries.map((d) => d.ack()));
    });

    it("purges waiting messages and says how many", async () => {
      const transport = await connect();
      const q = queue();
      for (let i = 0; i < 5; i++) await transport.publish(message(), { queue: q });
      expect(await transport.purge(q)).toBe(5);
      const consumer = consume(transport, [q]);
      await sleep(300);
      expect(consumer.received).toHaveLength(0);
    });

    it("hands each message to one consumer at a time among many", async () => {
      const q = queue();
      const producer = await connect();
      const total = 200;
      const sent = new Set<string>();
      for (let i = 0; i < total; i++) {
        const m = message("conformance.n", [i]);
        sent.add(String(m.headers.id));
        await producer.publish(m, { queue: q });
      }
      // Each consumer holds a message a little before acking it, so that a second delivery of
      // the same message to another consumer would overlap with the first.
      const fleet = await Promise.all(
        [1, 2, 3, 4].map(async () =>
          consume(await connect(), [q], 5, (delivery) => {
            setTimeout(() => void delivery.ack(), 5);
          }),
        ),
      );
      const deadline = Date.now() + 20_000;
      const count = (): number => fleet.reduce((sum, c) => sum + c.received.length, 0);
      while (count() < total && Date.now() < deadline) await sleep(50);
      await sleep(300);
      const seen = fleet.flatMap((c) => c.received.map(idOf));
      expect(seen).toHaveLength(total);
      expect(new Set(seen)).toEqual(sent);
    });

    it("hands a malformed message to the consumer as an error and keeps it when rejected", async () => {
      const transport = await connect();
      const q = queue();
      await harness.injectRaw(q, "{not json");
      await transport.publish(message("conformance.after"), { queue: q });
      const consumer = consume(transport, [q]);
      const deliveries = await consumer.waitFor(2);
      const bad = deliveries.find((d) => d.error);
      const good = deliveries.find((d) => d.message);
      expect(bad?.error?.code).toBe("MALFORMED_MESSAGE");
      expect(bad?.raw).toBe("{not json");
      await bad?.reject({ requeue: false, reason: String(bad.error?.message) });
      await good?.ack();
      if (transport.capabilities.deadLetter) {
        const dead = await transport.deadLetters?.(q);
        expect(dead?.map((d) => d.raw)).toEqual(["{not json"]);
        expect(dead?.[0]?.reason).toMatch(/malformed/);
      }
    });

    it("can be connected and closed more than once", async () => {
      const transport = await connect();
      await transport.connect();
      await transport.close();
      await transport.close();
    });

    describe("priorities", () => {
      it("serves the more urgent priority first, as the transport declares", async () => {
        const transport = await connect();
        const order = transport.capabilities.priority;
        const q = queue();
        for (const p of [3, 0, 9, 6]) {
          await transport.publish(message("conformance.p", [p]), { queue: q, priority: p });
        }
        const consumer = consume(transport, [q], 1);
        const seen: unknown[] = [];
        for (let i = 0; i < 4; i++) {
          const delivery = (await consumer.waitFor(i + 1))[i];
          seen.push(argOf(delivery!));
          await delivery?.ack();
        }
        if (order === false) expect([...seen].sort()).toEqual([0, 3, 6, 9]);
        else expect(seen).toEqual(order === "higher-first" ? [9, 6, 3, 0] : [0, 3, 6, 9]);
      });
    });

    describe("delayed delivery", () => {
      it("holds a message until `availableAt`, or delivers it at once for the worker to hold", async () => {
        const transport = await connect();
        const q = queue();
        const availableAt = Date.now() + 700;
        await transport.publish(message("conformance.later"), { queue: q, availableAt });
        await transport.publish(message("conformance.now"), { queue: q });
        const consumer = consume(transport, [q]);
        if (transport.capabilities.delayedDelivery === "worker") {
          const both = await consumer.waitFor(2, 500);
          expect(both.map((d) => d.message?.headers.task).sort()).toEqual([
            "conformance.later",
            "conformance.now",
          ]);
          return;
        }
        const [first] = await consumer.waitFor(1);
        expect(first?.message?.headers.task).toBe("conformance.now");
        const [, later] = await consumer.waitFor(2);
        expect(Date.now()).toBeGreaterThanOrEqual(availableAt);
        expect(later?.message?.headers.task).toBe("conformance.later");
      });
    });
  });
}
