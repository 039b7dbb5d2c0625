import { createTaskMessage, encodeTaskMessage, type Delivery } from "@celery-ts/core";
import { expect, it } from "vitest";
import { argOf, message } from "./consumer.ts";
import type { TransportSuiteContext } from "./transport-context.ts";

/** Rules 3, 8, 10, 11, 16 and 17: what a consumer gets of what was published, and when. */
export function publishingTests(ctx: TransportSuiteContext): void {
  deliveryTests(ctx);
  capabilityTests(ctx);
}

function deliveryTests(ctx: TransportSuiteContext): void {
  it("3: delivers a published message with its body, headers and properties intact", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    const sent = encodeTaskMessage(
      createTaskMessage({
        task: "conformance.echo",
        args: [1, "zwei", { drei: [3] }],
        kwargs: { é: "ü" },
      }),
    );
    await transport.publish(sent, { queue: q });
    const [delivery] = await ctx.consume(transport, [q]).waitFor(1, ctx.presenceMs(transport));
    expect(delivery?.queue).toBe(q);
    expect(delivery?.redelivered).toBe(false);
    expect(delivery?.message?.body).toBe(sent.body);
    expect(delivery?.message?.contentType).toBe(sent.contentType);
    expect(delivery?.message?.contentEncoding).toBe(sent.contentEncoding);
    expect(delivery?.message?.headers).toEqual(sent.headers);
    expect(delivery?.message?.properties).toMatchObject(sent.properties);
    await delivery?.ack();
  });

  it("8: a message is on the broker, for every connection, once publish() resolves", async () => {
    const [producer, other] = [await ctx.connect(), await ctx.connect()];
    const q = ctx.queue();
    await producer.publish(message(), { queue: q });
    await producer.publish(message(), { queue: q });
    expect(await other.purge(q)).toBe(2);
  });

  it("16: delivers in publish order within one priority", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    for (let i = 0; i < 20; i++)
      await transport.publish(message("conformance.n", [i]), { queue: q });
    const consumer = ctx.consume(transport, [q], 1);
    const order: unknown[] = [];
    for (let i = 0; i < 20; i++) {
      const delivery = (await consumer.waitFor(i + 1, ctx.presenceMs(transport)))[i]!;
      order.push(argOf(delivery));
      await delivery.ack();
    }
    expect(order).toEqual([...Array(20).keys()]);
  });

  it("17: never calls onDelivery from inside publish()", async () => {
    const transport = await ctx.connect();
    const q = ctx.queue();
    let publishing = false;
    let inside = 0;
    const consumer = ctx.consume(transport, [q], 10, () => {
      if (publishing) inside++;
    });
    for (let i = 0; i < 5; i++) {
      publishing = true;
      const sent = transport.publish(message(), { queue: q });
      publishing = false;
      await sent;
      await consumer.waitFor(i + 1, ctx.presenceMs(transport));
    }
    expect(inside).toBe(0);
    await Promise.all(consumer.received.map((d) => d.ack()));
  });
}

function capabilityTests(ctx: TransportSuiteContext): void {
  it("10: serves the more urgent priority first, as the transport declares", async (test) => {
    const transport = await ctx.connect();
    const order = transport.capabilities.priority;
    const q = ctx.queue();
    for (const p of [3, 0, 9, 6]) {
      await transport.publish(message("conformance.p", [p]), { queue: q, priority: p });
    }
    const consumer = ctx.consume(transport, [q], 1);
    const seen: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const delivery = (await consumer.waitFor(i + 1, ctx.presenceMs(transport)))[i]!;
      seen.push(argOf(delivery));
      await delivery.ack();
    }
    expect([...seen].sort()).toEqual([0, 3, 6, 9]);
    if (order === false) test.skip("capabilities.priority is false: priorities are not ordered");
    expect(seen).toEqual(order === "higher-first" ? [9, 6, 3, 0] : [0, 3, 6, 9]);
  });

  it('11: with delayedDelivery "native", holds a message until `availableAt`', async (test) => {
    const transport = await ctx.connect();
    if (transport.capabilities.delayedDelivery !== "native") {
      test.skip('capabilities.delayedDelivery is "worker": the worker holds early messages');
    }
    const q = ctx.queue();
    const arrivals: number[] = [];
    const consumer = ctx.consume(transport, [q], 10, () => arrivals.push(Date.now()));
    // The consumer is running, and the delay machinery set up (AMQP declares its delay topology
    // on first use), once a first delayed message reaches it.
    await transport.publish(message("conformance.probe"), {
      queue: q,
      availableAt: Date.now() + 1_000,
    });
    await consumer.waitFor(1, ctx.presenceMs(transport));
    const availableAt = Date.now() + 1_500;
    await transport.publish(message("conformance.later"), { queue: q, availableAt });
    await transport.publish(message("conformance.now"), { queue: q });
    const [, first] = await consumer.waitFor(2, ctx.presenceMs(transport));
    expect(first?.message?.headers.task).toBe("conformance.now");
    const [, , later] = await consumer.waitFor(3, 1_500 + ctx.presenceMs(transport));
    expect(arrivals[2]).toBeGreaterThanOrEqual(availableAt);
    expect(later?.message?.headers.task).toBe("conformance.later");
  });

  it('11: with delayedDelivery "worker", delivers a message with `availableAt` at once', async (test) => {
    const transport = await ctx.connect();
    if (transport.capabilities.delayedDelivery !== "worker") {
      test.skip('capabilities.delayedDelivery is "native": the transport holds early messages');
    }
    const q = ctx.queue();
    const availableAt = Date.now() + 3_600_000;
    await transport.publish(message("conformance.later"), { queue: q, availableAt });
    const [delivery]: Delivery[] = await ctx
      .consume(transport, [q])
      .waitFor(1, ctx.presenceMs(transport));
    expect(delivery?.message?.headers.task).toBe("conformance.later");
  });
}
