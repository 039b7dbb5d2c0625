import {
  decodeTaskMessage,
  isCeleryTsError,
  publishAll,
  unsentOf,
  type PublishItem,
  type Transport,
} from "@celery-ts/core";
import { expect, it } from "vitest";
import { argOf, message } from "./consumer.ts";
import type { TransportSuiteContext } from "./transport-context.ts";

/** `count` messages numbered from 0, alternating between queues `a` (two of three) and `b`. */
function batchOf(count: number, a: string, b: string): PublishItem[] {
  return Array.from({ length: count }, (_, i) => ({
    message: message("conformance.batch", [i]),
    options: { queue: i % 3 === 2 ? b : a },
  }));
}

/** The same connection without `publishBatch()`: `publishAll()` takes its fallback. */
function withoutBatch(transport: Transport): Transport {
  const { publishBatch: _dropped, ...rest } = transport;
  return rest;
}

/** Rule 35: a batch publish (`publishBatch()`, or `publishAll()`'s fallback without it). */
export function batchTests(ctx: TransportSuiteContext): void {
  /** Takes `count` messages off `queue`, one at a time, and returns their numbers in order. */
  const drain = async (transport: Transport, queue: string, count: number) => {
    const consumer = ctx.consume(transport, [queue], 1);
    const order: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const delivery = (await consumer.waitFor(i + 1, ctx.presenceMs(transport)))[i]!;
      order.push(argOf(delivery));
      await delivery.ack();
    }
    await consumer.expectNoMoreThan(count, ctx.absenceMs(transport), "a batch delivered once");
    return order;
  };

  for (const path of ["publishBatch()", "the fallback without publishBatch()"] as const) {
    it(`35: ${path} puts every message of a batch on the broker, in order per queue, before it resolves`, async (test) => {
      const connected = await ctx.connect();
      if (path === "publishBatch()" && !connected.publishBatch) {
        test.skip("the transport has no publishBatch(): publishAll() publishes one by one");
      }
      const producer = path === "publishBatch()" ? connected : withoutBatch(connected);
      const [a, b] = [ctx.queue(), ctx.queue()];
      // 25 messages: more than one SQS batch of 10 on queue a.
      const batch = batchOf(25, a, b);
      let published = 0;
      const counted: Transport = {
        ...producer,
        publish: async (wire, options) => {
          published++;
          await producer.publish(wire, options);
        },
      };
      await publishAll(counted, batch);
      if (path === "publishBatch()") expect(published, "publish() is not used").toBe(0);
      else expect(published, "one publish() per message").toBe(25);
      // Another connection finds them all, each once, in the batch's order.
      const reader = await ctx.connect();
      const numbers = batch.map((_, i) => i);
      const [fromA, fromB] = await Promise.all([drain(reader, a, 17), drain(reader, b, 8)]);
      expect(fromA).toEqual(numbers.filter((i) => i % 3 !== 2));
      expect(fromB).toEqual(numbers.filter((i) => i % 3 === 2));
    });
  }

  it("35: without publishBatch(), publishAll() sends one message at a time, in order", async () => {
    const producer = withoutBatch(await ctx.connect());
    const q = ctx.queue();
    const started: unknown[] = [];
    let inFlight = 0;
    let most = 0;
    const observed: Transport = {
      ...producer,
      publish: async (wire, options) => {
        started.push(decodeTaskMessage(wire).args[0]);
        most = Math.max(most, ++inFlight);
        try {
          await producer.publish(wire, options);
        } finally {
          inFlight--;
        }
      },
    };
    await publishAll(observed, batchOf(6, q, q));
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most, "each publish() waits for the one before").toBe(1);
    expect(await drain(producer, q, 6)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  for (const path of ["publishBatch()", "the fallback without publishBatch()"] as const) {
    it(`35: a batch that cannot be published rejects with a CeleryTsError naming the unsent messages (${path})`, async () => {
      const connected = await ctx.connect();
      const producer = path === "publishBatch()" ? connected : withoutBatch(connected);
      const batch = batchOf(3, ctx.queue(), ctx.queue());
      await connected.close();
      const error = await publishAll(producer, batch).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(isCeleryTsError(error, "CLOSED"), `got ${String(error)}`).toBe(true);
      // Whatever the path, the caller learns which messages to send again: all of them here.
      const unsent = unsentOf(error) ?? batch;
      expect(unsent.map((item) => decodeTaskMessage(item.message).args[0])).toEqual([0, 1, 2]);
    });
  }
}
