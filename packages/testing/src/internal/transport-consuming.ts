import { expect, it } from "vitest";
import { argOf, idOf, message, waitUntil } from "./consumer.ts";
import { PRESENCE_WAIT_SECONDS, type TransportSuiteContext } from "./transport-context.ts";

/** Publish-take-ack rounds of the wake-up test: each gives the race a chance. */
const WAKE_ROUNDS = 20;

/** Rules 12-15 and 26: wake-ups, flow control, one consumer at a time, unreadable messages. */
export function consumingTests(ctx: TransportSuiteContext): void {
  flowTests(ctx);
  sharingTests(ctx);
}

/** Rules 12-14: wake-ups and prefetch. */
function flowTests(ctx: TransportSuiteContext): void {
  it("12: delivers a message published while the consumer is taking, without waiting for a poll", async (test) => {
    const { createWakeOnly } = ctx.harness;
    if (!createWakeOnly) {
      test.skip("the harness gives no createWakeOnly: this broker has no wake-ups to lose");
      return;
    }
    const consumerSide = await ctx.connect(createWakeOnly);
    const producer = await ctx.connect();
    const q = ctx.queue();
    const consumer = ctx.consume(consumerSide, [q], 1);
    // Each ack frees the only slot, so the consumer takes at once while the next message is
    // being published: its wake-up often comes while that take is under way. A lost wake-up
    // leaves the message for the next poll, a minute away: longer than this bounded wait.
    for (let i = 0; i < WAKE_ROUNDS; i++) {
      await producer.publish(message("conformance.n", [i]), { queue: q });
      const delivered = await consumer.waitFor(i + 1, PRESENCE_WAIT_SECONDS * 1000);
      await delivered[i]?.ack();
    }
  });

  it("13: keeps at most `prefetch` deliveries outstanding, and takes more as they settle", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    for (let i = 0; i < 10; i++)
      await transport.publish(message("conformance.n", [i]), { queue: q });
    const consumer = ctx.consume(transport, [q], 3);
    await consumer.waitFor(3, ctx.presenceMs(transport));
    await consumer.expectNoMoreThan(3, ctx.absenceMs(transport), "prefetch 3");
    await consumer.received[0]?.ack();
    await consumer.received[1]?.reject({ requeue: false, reason: "conformance" });
    await consumer.waitFor(5, ctx.presenceMs(transport));
    await consumer.expectNoMoreThan(5, ctx.absenceMs(transport), "prefetch 3, two settled");
  });

  it("14: reads `prefetch` again as the consumer raises it", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    for (let i = 0; i < 4; i++)
      await transport.publish(message("conformance.n", [i]), { queue: q });
    const flow = { prefetch: 1 };
    // A worker holding an early message raises its prefetch, as Celery does for etas.
    const consumer = ctx.consume(transport, [q], flow, () => (flow.prefetch = 3));
    await consumer.waitFor(3, ctx.presenceMs(transport));
    await consumer.expectNoMoreThan(3, ctx.absenceMs(transport), "prefetch raised to 3");
  });

  it("consumes from several queues", async () => {
    const transport = await ctx.connect();
    const [a, b] = [ctx.queue(), ctx.queue()];
    await transport.publish(message("conformance.n", ["a"]), { queue: a });
    await transport.publish(message("conformance.n", ["b"]), { queue: b });
    const deliveries = await ctx.consume(transport, [a, b]).waitFor(2, ctx.presenceMs(transport));
    expect(Object.fromEntries(deliveries.map((d) => [String(argOf(d)), d.queue]))).toEqual({
      a,
      b,
    });
    await Promise.all(deliveries.map((d) => d.ack()));
  });
}

/** Rules 15 and 26: one consumer at a time, unreadable messages. */
function sharingTests(ctx: TransportSuiteContext): void {
  it("15, 20: hands each message to one consumer at a time among many, each with its own tag", async () => {
    const q = ctx.queue();
    const producer = await ctx.connect();
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
        ctx.consume(await ctx.connect(), [q], 5, (delivery) => {
          setTimeout(() => void delivery.ack(), 5);
        }),
      ),
    );
    const count = (): number => fleet.reduce((sum, c) => sum + c.received.length, 0);
    await waitUntil(
      () => count() >= total,
      (wake) => {
        const timer = setInterval(wake, 50);
        return () => clearInterval(timer);
      },
      ctx.presenceMs(producer) + 20_000,
    );
    // Whatever else arrives within the window is a message delivered twice.
    const settledCount = count();
    await Promise.all(
      fleet.map((c) => c.expectNoMoreThan(c.received.length, ctx.absenceMs(producer), "no more")),
    );
    const seen = fleet.flatMap((c) => c.received.map(idOf));
    expect(settledCount).toBe(total);
    expect(seen).toHaveLength(total);
    expect(new Set(seen)).toEqual(sent);
    const tags = fleet.flatMap((c) => c.received.map((d) => d.deliveryTag));
    expect(new Set(tags).size).toBe(total);
  });

  it("15: keeps a held message from every other consumer for twice its redelivery window", async () => {
    const [holder, other] = [await ctx.connect(), await ctx.connect()];
    const q = ctx.queue();
    await holder.publish(message(), { queue: q });
    const [held] = await ctx.consume(holder, [q], 1).waitFor(1, ctx.presenceMs(holder));
    // A lease that is not renewed runs out within one window: hold it for two.
    const rival = ctx.consume(other, [q]);
    await rival.expectNoMoreThan(0, 2 * ctx.absenceMs(other), "a message held by a live consumer");
    await held?.ack();
    await rival.expectNoMoreThan(0, ctx.absenceMs(other), "an acknowledged message");
  });

  it("26: hands a malformed message to the consumer as an error, and goes on", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await ctx.harness.injectRaw(q, "{not json");
    await transport.publish(message("conformance.after"), { queue: q });
    const consumer = ctx.consume(transport, [q]);
    const deliveries = await consumer.waitFor(2, ctx.presenceMs(transport));
    const bad = deliveries.find((d) => d.error);
    const good = deliveries.find((d) => d.message);
    expect(bad?.error?.code).toBe("MALFORMED_MESSAGE");
    expect(bad?.error?.message).toBeTruthy();
    expect(bad?.raw).toBe("{not json");
    expect(bad?.message).toBeUndefined();
    await bad?.reject({ requeue: false, reason: String(bad.error?.message) });
    await good?.ack();
    await consumer.expectNoMoreThan(2, ctx.absenceMs(transport), "a rejected malformed message");
    if (transport.capabilities.deadLetter) {
      const dead = await transport.deadLetters?.(q);
      expect(dead?.map((d) => d.raw)).toEqual(["{not json"]);
      expect(dead?.[0]?.reason).toBe(String(bad?.error?.message));
    }
  });
}
