import { isCeleryTsError, type CeleryTsError } from "@celery-ts/core";
import { expect, it } from "vitest";
import { argOf, message } from "./consumer.ts";
import type { TransportSuiteContext } from "./transport-context.ts";

/** What a call ends with: "resolved", or the error it threw or rejected with. */
const settled = async (call: () => Promise<unknown>): Promise<unknown> => {
  try {
    await call();
    return "resolved";
  } catch (error) {
    return error;
  }
};

function expectCode(error: unknown, code: CeleryTsError["code"], what: string): void {
  if (!isCeleryTsError(error, code)) {
    throw new Error(`${what}: expected a CeleryTsError with code ${code}, got ${String(error)}`);
  }
}

/** Rules 4-7, 12, 18, 30 and 32: connecting, closing, a consumer that died, errors. */
export function lifecycleTests(ctx: TransportSuiteContext): void {
  connectionTests(ctx);
  consumeEndTests(ctx);
}

function connectionTests(ctx: TransportSuiteContext): void {
  it("4: connects on first use, and connect() is idempotent", async () => {
    const [producer, consumerSide] = [await ctx.open(), await ctx.open()];
    const q = ctx.queue();
    await producer.publish(message(), { queue: q });
    const [delivery] = await ctx.consume(consumerSide, [q]).waitFor(1, ctx.presenceMs(producer));
    await delivery?.ack();
    await Promise.all([producer.connect(), producer.connect()]);
    await producer.connect();
  });

  it("5: close() is idempotent, ends every consume() and hands unacknowledged messages back", async () => {
    const transport = await ctx.connect();
    const [a, b] = [ctx.queue(), ctx.queue()];
    await transport.publish(message(), { queue: a });
    const first = ctx.consume(transport, [a]);
    const second = ctx.consume(transport, [b]);
    await first.waitFor(1, ctx.presenceMs(transport));
    await Promise.all([transport.close(), transport.close()]);
    await transport.close();
    const ended = Promise.all([first.done, second.done]).then(() => true);
    const bound = new Promise<boolean>((resolve) =>
      setTimeout(() => resolve(false), ctx.presenceMs(transport)),
    );
    expect(await Promise.race([ended, bound]), "every consume() resolves on close()").toBe(true);
    const other = await ctx.connect();
    const [again] = await ctx.consume(other, [a]).waitFor(1, ctx.presenceMs(other));
    expect(again?.redelivered).toBe(true);
    await again?.ack();
  });

  it("5, 16: a graceful close hands its deliveries back in the order published, to a consumer already taking", async () => {
    const [closing, other] = [await ctx.connect(), await ctx.connect()];
    const q = ctx.queue();
    for (let i = 0; i < 6; i++) await closing.publish(message("conformance.n", [i]), { queue: q });
    await ctx.consume(closing, [q], 6).waitFor(6, ctx.presenceMs(closing));
    // One at a time, so that it takes each as it comes back: a hand-back that puts them back one
    // by one, or in the wrong order, shows. A marker (which only it has room for) proves it live.
    const waiting = ctx.consume(other, [q], 1, (d) => void d.ack().catch(() => undefined));
    await closing.publish(message("conformance.n", [-1]), { queue: q });
    await waiting.waitFor(1, ctx.presenceMs(other));
    await closing.close();
    const received = await waiting.waitFor(7, ctx.presenceMs(other));
    expect(received.map(argOf)).toEqual([-1, 0, 1, 2, 3, 4, 5]);
  });

  it("6, 30: a consumer closed with force (as if it died) has its messages redelivered, marked so", async () => {
    const doomed = await ctx.connect();
    const q = ctx.queue();
    const sent = message();
    await doomed.publish(sent, { queue: q });
    await ctx.consume(doomed, [q]).waitFor(1, ctx.presenceMs(doomed));
    await doomed.close({ force: true });
    const survivor = await ctx.connect();
    const [again] = await ctx.consume(survivor, [q]).waitFor(1, ctx.presenceMs(survivor));
    expect(again?.redelivered).toBe(true);
    expect(again?.message?.body).toBe(sent.body);
    await again?.ack();
  });

  it("7: after close(), publish, consume, purge, ack and reject fail with CLOSED", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    await transport.publish(message(), { queue: q });
    const [one, two] = await ctx.consume(transport, [q]).waitFor(2, ctx.presenceMs(transport));
    await transport.close();
    const signal = new AbortController().signal;
    expectCode(
      await settled(() => transport.publish(message(), { queue: q })),
      "CLOSED",
      "publish",
    );
    expectCode(
      await settled(() => transport.consume([q], () => {}, { prefetch: 1, signal })),
      "CLOSED",
      "consume",
    );
    expectCode(await settled(() => transport.purge(q)), "CLOSED", "purge");
    expectCode(await settled(() => one!.ack()), "CLOSED", "ack");
    expectCode(await settled(() => two!.reject({ requeue: true })), "CLOSED", "reject");
  });
}

function consumeEndTests(ctx: TransportSuiteContext): void {
  it("12: consume() with an aborted signal resolves without taking a message", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    const controller = new AbortController();
    controller.abort();
    let delivered = 0;
    await transport.consume([q], () => delivered++, {
      prefetch: 10,
      signal: controller.signal,
    });
    expect(delivered).toBe(0);
    const [first] = await ctx.consume(transport, [q]).waitFor(1, ctx.presenceMs(transport));
    expect(first?.redelivered, "the message was never delivered").toBe(false);
    await first?.ack();
  });

  it("18: deliveries outstanding when the signal aborts stay valid until close()", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    await transport.publish(message(), { queue: q });
    const consumer = ctx.consume(transport, [q], 2);
    const [kept, handed] = await consumer.waitFor(2, ctx.presenceMs(transport));
    await consumer.stop();
    await kept?.ack();
    await handed?.reject({ requeue: true });
    await transport.close({ force: true });
    const other = await ctx.connect();
    const late = ctx.consume(other, [q]);
    const [back] = await late.waitFor(1, ctx.presenceMs(other));
    expect(back?.redelivered).toBe(true);
    await back?.ack();
    await late.expectNoMoreThan(1, ctx.absenceMs(other), "only the handed-back message returns");
  });

  it("32: a broker that cannot be reached fails with a retryable CONNECTION error", async (test) => {
    if (!ctx.harness.createUnreachable) {
      test.skip("the harness has no createUnreachable(): this broker cannot be unreachable");
    }
    const transport = await ctx.harness.createUnreachable!();
    try {
      const outcomes = await Promise.all([
        settled(() => transport.connect()),
        settled(() => transport.publish(message(), { queue: ctx.queue() })),
      ]);
      for (const error of outcomes) {
        expectCode(error, "CONNECTION", "a call to an unreachable broker");
        expect((error as CeleryTsError).retryable, "CONNECTION errors are retryable").toBe(true);
      }
    } finally {
      await transport.close({ force: true });
    }
  });
}
