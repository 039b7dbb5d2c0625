import type { Delivery, Transport } from "@celery-ts/core";
import { expect, it } from "vitest";
import { message, waitUntil } from "./consumer.ts";
import type { TransportSuiteContext } from "./transport-context.ts";

/** Re-checks a condition every 20 ms, for `waitUntil`: nothing here emits events to wait on. */
const ticking = (wake: () => void): (() => void) => {
  const timer = setInterval(wake, 20);
  return () => clearInterval(timer);
};

/** A `consume()` that records its `onConsuming` calls, and whether one came from inside it. */
function liveConsumer(transport: Transport, queue: string, signal: AbortSignal) {
  const state = { calls: 0, insideConsume: false, returned: false, received: [] as Delivery[] };
  const done = transport.consume([queue], (delivery) => state.received.push(delivery), {
    prefetch: 10,
    signal,
    onConsuming: () => {
      state.calls++;
      if (!state.returned) state.insideConsume = true;
    },
  });
  state.returned = true;
  // A consume() that fails is the test's failure, where it awaits `done`.
  done.catch(() => {});
  return { state, done };
}

/** Rule 45: `onConsuming`, the moment a consumer is live (the worker's start() waits for it). */
export function liveTests(ctx: TransportSuiteContext): void {
  it("45: calls onConsuming once, on a later tick, when the consumer is live: a message published then is delivered", async () => {
    const transport = await ctx.connect();
    expect(transport.capabilities.reportsConsuming, "capabilities.reportsConsuming").toBe(true);
    const q = ctx.queue();
    const controller = new AbortController();
    const { state, done } = liveConsumer(transport, q, controller.signal);
    try {
      const presence = ctx.presenceMs(transport);
      expect(await waitUntil(() => state.calls > 0, ticking, presence), "onConsuming").toBe(true);
      expect(state.insideConsume, "onConsuming was called from inside consume()").toBe(false);
      await transport.publish(message("conformance.n", ["live"]), { queue: q });
      const delivered = await waitUntil(() => state.received.length > 0, ticking, presence);
      expect(delivered, "the message published once the consumer was live").toBe(true);
      await state.received[0]?.ack();
      expect(state.calls, "onConsuming calls").toBe(1);
    } finally {
      controller.abort();
      await done;
    }
    expect(state.calls, "onConsuming calls, after consume() resolved").toBe(1);
  });

  it("45: never calls onConsuming for a consume() whose signal was aborted before it was live", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    const controller = new AbortController();
    controller.abort();
    const { state, done } = liveConsumer(transport, q, controller.signal);
    await done;
    // Another consumer takes the message meanwhile: time enough for a late call to show.
    const [first] = await ctx.consume(transport, [q]).waitFor(1, ctx.presenceMs(transport));
    await first?.ack();
    expect(state.calls, "onConsuming calls of the aborted consume()").toBe(0);
    expect(state.received).toHaveLength(0);
  });
}
