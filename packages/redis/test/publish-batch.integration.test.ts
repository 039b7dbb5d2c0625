import { createTaskMessage, encodeTaskMessage, publishAll, unsentOf } from "@celery-ts/core";
import { Redis } from "ioredis";
import { captureLogger } from "@celery-ts/testing";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisTransport } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, uniquePrefix } from "./support/redis.ts";

const raw = rawClient();
const prefix = uniquePrefix("publish-batch");
afterAll(() => deletePrefix(raw, prefix));

/** A client that records the name of every command it writes, in `sent`. */
function spiedClient(): { client: Redis; sent: string[] } {
  const client = new Redis(REDIS_URL);
  const sent: string[] = [];
  const original = client.sendCommand.bind(client);
  client.sendCommand = ((command: { name: string }) => {
    sent.push(command.name);
    return original(command as never);
  }) as typeof client.sendCommand;
  return { client, sent };
}

describe("publishBatch on Redis", () => {
  it("sends a batch in one MULTI round trip, one LPUSH per list, in kombu's layout", async () => {
    const { client, sent } = spiedClient();
    const transport = createRedisTransport({ connection: client, keyPrefix: prefix });
    try {
      await transport.connect();
      sent.length = 0;
      const batch = Array.from({ length: 30 }, (_, i) => ({
        message: encodeTaskMessage(createTaskMessage({ task: "batch.n", args: [i] })),
        options: { queue: i % 2 ? "odd" : "even", ...(i === 3 && { priority: 6 }) },
      }));
      await publishAll(transport, batch);
      expect(sent.filter((name) => name === "multi")).toHaveLength(1);
      expect(sent.filter((name) => name === "exec")).toHaveLength(1);
      // even, odd and odd's priority-6 list: one LPUSH each, with all their messages.
      expect(sent.filter((name) => name === "lpush")).toHaveLength(3);
      expect(await raw.llen(`${prefix}even`)).toBe(15);
      expect(await raw.llen(`${prefix}odd`)).toBe(14);
      expect(await raw.llen(`${prefix}odd\x06\x166`)).toBe(1);
      expect(await raw.smembers(`${prefix}_kombu.binding.even`)).toEqual([
        "even\x06\x16\x06\x16even",
      ]);
      // Once declared, a second batch sends no SADD.
      sent.length = 0;
      await publishAll(transport, batch.slice(0, 4));
      expect(sent).not.toContain("sadd");
      // Consumers pop from the right: the messages of a list come out in the order sent.
      const firstOf = async (list: string) => {
        const envelope = JSON.parse((await raw.rpop(list))!) as { body: string };
        return (JSON.parse(Buffer.from(envelope.body, "base64").toString()) as unknown[])[0];
      };
      for (const n of [0, 2, 4, 6]) expect(await firstOf(`${prefix}even`)).toEqual([n]);
    } finally {
      await transport.close();
      client.disconnect();
    }
  });

  it("joins publishes made in the same tick into one LPUSH, in order; each send settles", async () => {
    const { client, sent } = spiedClient();
    const transport = createRedisTransport({ connection: client, keyPrefix: prefix });
    const message = (i: number) =>
      encodeTaskMessage(createTaskMessage({ task: "tick.n", args: [i] }));
    try {
      await transport.connect();
      await transport.publish(message(-1), { queue: "tick" });
      sent.length = 0;
      // A lone publish to a declared queue: one LPUSH, no MULTI.
      await transport.publish(message(0), { queue: "tick" });
      expect(sent).toEqual(["lpush"]);
      sent.length = 0;
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => transport.publish(message(i + 1), { queue: "tick" })),
      );
      expect(sent).toEqual(["lpush"]);
      expect(await raw.llen(`${prefix}tick`)).toBe(22);
      const order: unknown[] = [];
      for (let i = 0; i < 22; i++) {
        const envelope = JSON.parse((await raw.rpop(`${prefix}tick`))!) as { body: string };
        order.push((JSON.parse(Buffer.from(envelope.body, "base64").toString()) as unknown[])[0]);
      }
      expect(order).toEqual(Array.from({ length: 22 }, (_, i) => [i - 1]));
      // A list Redis refuses fails the sends it carried, and only those: the others landed.
      await raw.set(`${prefix}refused`, "not a list");
      const outcomes = await Promise.allSettled([
        transport.publish(message(1), { queue: "refused" }),
        transport.publish(message(2), { queue: "refused" }),
        transport.publish(message(3), { queue: "tick" }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "fulfilled"]);
      expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
      expect(await raw.llen(`${prefix}tick`)).toBe(1);
      // A batch across both: its error names the unsent messages, to be sent again.
      const batch = [1, 2, 3].map((i) => ({
        message: message(i),
        options: { queue: i === 2 ? "refused" : "tick" },
      }));
      const failed = await publishAll(transport, batch).catch((error: unknown) => error);
      expect(unsentOf(failed)).toEqual([batch[1]]);
      expect(String(failed)).toMatch(/1 of 3 messages were not published/);
      expect(await raw.llen(`${prefix}tick`)).toBe(3);
    } finally {
      await transport.close();
      client.disconnect();
    }
  });

  it("queues a message whose queue's kombu binding Redis refuses: the send resolves, a warning says what to do, the next publish declares it again", async () => {
    const logger = captureLogger();
    const transport = createRedisTransport({ connection: REDIS_URL, keyPrefix: prefix, logger });
    const binding = `${prefix}_kombu.binding.unbound`;
    const message = encodeTaskMessage(createTaskMessage({ task: "unbound.n", args: [1] }));
    try {
      await raw.set(binding, "not a set");
      // Resolves: the message is on its list (a caller retrying on an error would send it twice).
      await transport.publish(message, { queue: "unbound" });
      expect(await raw.llen(`${prefix}unbound`)).toBe(1);
      expect(logger.text("warn")).toMatch(/could not declare queue "unbound".*WRONGTYPE/);
      expect(logger.text("warn")).toContain(`delete or fix ${binding}`);
      // Not taken as declared: once the key is fixed, the next publish declares the queue.
      await raw.del(binding);
      await transport.publish(message, { queue: "unbound" });
      expect(await raw.llen(`${prefix}unbound`)).toBe(2);
      expect(await raw.smembers(binding)).toEqual(["unbound\x06\x16\x06\x16unbound"]);
    } finally {
      await raw.del(binding);
      await transport.close();
    }
  });
});
