import { expect, it } from "vitest";
import { message } from "./consumer.ts";
import { requireDeadLetters, type TransportSuiteContext } from "./transport-context.ts";

/** Rules 21-25, 27 and 28: ack, requeue, dead letters, settling twice, purge. */
export function settlingTests(ctx: TransportSuiteContext): void {
  ackRequeueTests(ctx);
  rejectTests(ctx);
}

function ackRequeueTests(ctx: TransportSuiteContext): void {
  it("23: forgets an acknowledged message, even when its consumer dies after the ack", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    const [delivery] = await ctx.consume(transport, [q]).waitFor(1, ctx.presenceMs(transport));
    await delivery?.ack();
    await transport.close({ force: true });
    const other = await ctx.connect();
    const late = ctx.consume(other, [q]);
    await late.expectNoMoreThan(0, ctx.absenceMs(other), "an acknowledged message");
    expect(await other.purge(q)).toBe(0);
  });

  it("24: a message rejected with requeue is waiting on its queue once reject() resolves", async () => {
    const [transport, other] = [await ctx.connect(), await ctx.connect()];
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    const consumer = ctx.consume(transport, [q], 1);
    const [delivery] = await consumer.waitFor(1, ctx.presenceMs(transport));
    await consumer.stop();
    await delivery?.reject({ requeue: true });
    expect(await other.purge(q)).toBe(1);
  });

  it("21, 24: redelivers a message rejected with requeue, marked redelivered, with a new tag", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    const sent = message();
    await transport.publish(sent, { queue: q });
    const consumer = ctx.consume(transport, [q]);
    const [first] = await consumer.waitFor(1, ctx.presenceMs(transport));
    expect(first?.redelivered).toBe(false);
    await first?.reject({ requeue: true });
    const [, second] = await consumer.waitFor(2, ctx.presenceMs(transport));
    expect(second?.redelivered).toBe(true);
    expect(second?.message?.body).toBe(sent.body);
    expect(second?.deliveryTag).not.toBe(first?.deliveryTag);
    await second?.ack();
    await consumer.expectNoMoreThan(2, ctx.absenceMs(transport), "an acknowledged message");
  });

  it("25: does not redeliver a message rejected without requeue", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    const consumer = ctx.consume(transport, [q]);
    const [delivery] = await consumer.waitFor(1, ctx.presenceMs(transport));
    await delivery?.reject({ requeue: false, reason: "conformance says no" });
    await transport.close({ force: true });
    const late = ctx.consume(await ctx.connect(), [q]);
    await late.expectNoMoreThan(0, ctx.absenceMs(transport), "a rejected message");
  });
}

function rejectTests(ctx: TransportSuiteContext): void {
  it("25, 28: keeps dead letters with their reason and time, oldest first, at most `limit`", async (test) => {
    const transport = await ctx.connect();
    requireDeadLetters(transport, test);
    const q = ctx.queue();
    for (let i = 0; i < 3; i++)
      await transport.publish(message("conformance.n", [i]), { queue: q });
    const consumer = ctx.consume(transport, [q], 1);
    const before = Date.now();
    for (let i = 0; i < 3; i++) {
      const delivery = (await consumer.waitFor(i + 1, ctx.presenceMs(transport)))[i]!;
      await delivery.reject(i === 2 ? { requeue: false } : { requeue: false, reason: `no ${i}` });
    }
    const dead = (await transport.deadLetters!(q)) ?? [];
    expect(dead.map((d) => d.reason)).toEqual(["no 0", "no 1", "rejected"]);
    expect(dead.every((d) => d.queue === q && typeof d.raw === "string" && d.raw !== "")).toBe(
      true,
    );
    const times = dead.map((d) => d.rejectedAt);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times[0]).toBeGreaterThanOrEqual(before - 1_000);
    expect((await transport.deadLetters!(q, { limit: 2 })).map((d) => d.reason)).toEqual([
      "no 0",
      "no 1",
    ]);
  });

  it("22: only the first of ack() and reject() takes effect; later calls do nothing", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    await transport.publish(message(), { queue: q });
    await transport.publish(message(), { queue: q });
    const consumer = ctx.consume(transport, [q]);
    const [acked, dropped] = await consumer.waitFor(2, ctx.presenceMs(transport));
    await acked?.ack();
    await acked?.ack();
    await acked?.reject({ requeue: true });
    await acked?.reject({ requeue: false, reason: "too late" });
    await dropped?.reject({ requeue: false, reason: "first" });
    await dropped?.reject({ requeue: true });
    await dropped?.ack();
    await consumer.expectNoMoreThan(2, ctx.absenceMs(transport), "settled messages");
    if (transport.capabilities.deadLetter) {
      expect((await transport.deadLetters!(q)).map((d) => d.reason)).toEqual(["first"]);
    }
  });

  it("27: purge() deletes waiting and delayed messages, not outstanding ones or dead letters", async (test) => {
    ctx.deviation("27", test);
    const [transport, other] = [await ctx.connect(), await ctx.connect()];
    const q = ctx.queue();
    const deadLetter = transport.capabilities.deadLetter;
    await transport.publish(message("conformance.held"), { queue: q });
    if (deadLetter) await transport.publish(message("conformance.dead"), { queue: q });
    const consumer = ctx.consume(transport, [q], deadLetter ? 2 : 1);
    const taken = await consumer.waitFor(deadLetter ? 2 : 1, ctx.presenceMs(transport));
    await consumer.stop();
    const held = taken.find((d) => d.message?.headers.task === "conformance.held")!;
    const dead = taken.find((d) => d.message?.headers.task === "conformance.dead");
    await dead?.reject({ requeue: false, reason: "kept" });
    for (let i = 0; i < 3; i++) await transport.publish(message(), { queue: q });
    await transport.publish(message(), { queue: q, availableAt: Date.now() + 60_000 });
    expect(await other.purge(q)).toBe(4);
    await held.reject({ requeue: true });
    expect(await other.purge(q), "the outstanding message survived the purge").toBe(1);
    if (deadLetter)
      expect((await transport.deadLetters!(q)).map((d) => d.reason)).toEqual(["kept"]);
  });
}
