import type { Transport } from "@celery-ts/core";
import { expect, it, type TestContext } from "vitest";
import { idOf, message } from "./consumer.ts";
import { requireDeadLetters, type TransportSuiteContext } from "./transport-context.ts";

const requireManaged = (transport: Transport, test: TestContext): void =>
  requireDeadLetters(transport, test, { manage: true });

/** Publishes `n` messages to queue `q` and rejects each without requeue; returns their ids. */
async function rejectAll(
  ctx: TransportSuiteContext,
  transport: Transport,
  q: string,
  n: number,
  args: (i: number) => unknown[] = (i) => [i],
): Promise<string[]> {
  for (let i = 0; i < n; i++) await transport.publish(message("dl.n", args(i)), { queue: q });
  const consumer = ctx.consume(transport, [q], 1);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const delivery = (await consumer.waitFor(i + 1, ctx.presenceMs(transport)))[i]!;
    ids.push(idOf(delivery));
    await delivery.reject({ requeue: false, reason: `no ${i}` });
  }
  await consumer.stop();
  return ids;
}

/** Rules 40-44: dead letters keep the task id, are bounded, replayed and purged. */
export function deadLetterTests(ctx: TransportSuiteContext): void {
  keepingTests(ctx);
  boundTests(ctx);
}

/** Rules 40-42: what a dead letter keeps; replay and purge. */
function keepingTests(ctx: TransportSuiteContext): void {
  it("40: a dead letter names its task id and keeps its reason", async (test) => {
    const transport = await ctx.connect();
    requireManaged(transport, test);
    const q = ctx.queue();
    const ids = await rejectAll(ctx, transport, q, 2);
    const dead = await transport.deadLetters!(q);
    expect(dead.map((d) => [d.taskId, d.reason])).toEqual([
      [ids[0], "no 0"],
      [ids[1], "no 1"],
    ]);
  });

  it("41: replayDeadLetters() puts the message back on its queue, once, and removes the letter", async (test) => {
    const transport = await ctx.connect();
    requireManaged(transport, test);
    const q = ctx.queue();
    const [id] = await rejectAll(ctx, transport, q, 1);
    expect(await transport.replayDeadLetters!(q)).toBe(1);
    expect(await transport.deadLetters!(q)).toEqual([]);
    expect(await transport.replayDeadLetters!(q), "a second replay finds nothing").toBe(0);
    const consumer = ctx.consume(transport, [q]);
    const [again] = await consumer.waitFor(1, ctx.presenceMs(transport));
    expect(again && idOf(again)).toBe(id);
    await again?.ack();
    await consumer.expectNoMoreThan(1, ctx.absenceMs(transport), "a message replayed once");
  });

  it("42: replay and purge pick by task id and limit; purgeDeadLetters() empties them", async (test) => {
    const transport = await ctx.connect();
    requireManaged(transport, test);
    const q = ctx.queue();
    const ids = await rejectAll(ctx, transport, q, 4);
    expect(await transport.replayDeadLetters!(q, { taskId: ids[2]! })).toBe(1);
    expect(await transport.purgeDeadLetters!(q, { limit: 1 })).toBe(1);
    expect((await transport.deadLetters!(q)).map((d) => d.taskId)).toEqual([ids[1], ids[3]]);
    expect(await transport.purgeDeadLetters!(q)).toBe(2);
    expect(await transport.deadLetters!(q)).toEqual([]);
    // The replayed one waits on its queue; purging dead letters left it there.
    expect(await transport.purge(q)).toBe(1);
  });
}

/** Rules 43 and 44: the bounds of dead letters, and the message size limit. */
function boundTests(ctx: TransportSuiteContext): void {
  it("43: dead letters are bounded by count and bytes, the oldest dropped first", async (test) => {
    ctx.deviation("43", test);
    const transport = await ctx.open({ deadLetters: { maxCount: 3, maxBytes: 64 * 1024 } });
    requireManaged(transport, test);
    await transport.connect();
    const q = ctx.queue();
    const ids = await rejectAll(ctx, transport, q, 5);
    expect((await transport.deadLetters!(q)).map((d) => d.taskId)).toEqual(ids.slice(2));
    // Each at least 20 KiB however the broker stores it: four are over 64 KiB.
    const q2 = ctx.queue();
    const big = await rejectAll(ctx, transport, q2, 4, (i) => [i, "x".repeat(20 * 1024)]);
    const kept = await transport.deadLetters!(q2);
    const bytes = kept.reduce((sum, d) => sum + Buffer.byteLength(d.raw), 0);
    expect(bytes).toBeLessThanOrEqual(64 * 1024);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(4);
    expect(kept.map((d) => d.taskId)).toEqual(big.slice(4 - kept.length));
  });

  it("43: a message alone over the byte bound is dead-lettered with its reason and id, not its bytes", async (test) => {
    ctx.deviation("43", test);
    const transport = await ctx.open({ deadLetters: { maxBytes: 8 * 1024 } });
    requireManaged(transport, test);
    await transport.connect();
    const q = ctx.queue();
    const [id] = await rejectAll(ctx, transport, q, 1, () => ["y".repeat(16 * 1024)]);
    const [letter] = await transport.deadLetters!(q);
    expect(letter?.taskId).toBe(id);
    expect(letter?.raw).toBe("");
    expect(letter?.reason).toMatch(/^no 0 \(message not kept: \d+ bytes/);
    expect(await transport.replayDeadLetters!(q), "nothing to replay").toBe(0);
  });

  it("44: a message over maxMessageBytes is delivered as an error naming its size, or refused on the broker", async (test) => {
    ctx.deviation("44", test);
    const transport = await ctx.open({ maxMessageBytes: 32 * 1024 });
    await transport.connect();
    const q = ctx.queue();
    const sent = message("dl.big", ["z".repeat(64 * 1024)]);
    await transport.publish(sent, { queue: q });
    await transport.publish(message("dl.small"), { queue: q });
    const settles: Promise<void>[] = [];
    const consumer = ctx.consume(transport, [q], 10, (delivery) => {
      settles.push(
        delivery.error
          ? delivery.reject({ requeue: false, reason: delivery.error.message })
          : delivery.ack(),
      );
    });
    // The small one always arrives; the big one only as an error, if at all.
    await consumer.waitFor(1, ctx.presenceMs(transport));
    await consumer.expectNoMoreThan(2, ctx.absenceMs(transport), "the two messages");
    await Promise.all(settles);
    expect(consumer.received.filter((d) => d.message).map((d) => d.message!.headers.task)).toEqual([
      "dl.small",
    ]);
    for (const delivery of consumer.received.filter((d) => d.error)) {
      expect(delivery.raw?.length).toBeLessThanOrEqual(1024);
    }
    if (transport.capabilities.deadLetter) {
      const [letter] = await transport.deadLetters!(q);
      expect(letter?.reason).toMatch(/bytes, over the 32768-byte limit/);
      expect(letter?.taskId).toBe(sent.headers.id);
    }
  });
}
