import { createTaskMessage, encodeTaskMessage, publishAll } from "@celery-ts/core";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisTransport } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, uniquePrefix } from "./support/redis.ts";

const raw = rawClient();
const prefix = uniquePrefix("publish-batch");
afterAll(() => deletePrefix(raw, prefix));

describe("publishBatch on Redis", () => {
  it("sends a batch in one MULTI round trip, in kombu's layout, and every message arrives", async () => {
    const client = new Redis(REDIS_URL);
    const sent: string[] = [];
    const original = client.sendCommand.bind(client);
    client.sendCommand = ((command: { name: string }) => {
      sent.push(command.name);
      return original(command as never);
    }) as typeof client.sendCommand;
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
      expect(sent.filter((name) => name === "lpush")).toHaveLength(30);
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
      const taken = await raw.rpop(`${prefix}even`);
      const envelope = JSON.parse(taken!) as { body: string };
      const body = JSON.parse(Buffer.from(envelope.body, "base64").toString()) as unknown[];
      expect(body[0]).toEqual([0]);
    } finally {
      await transport.close();
      client.disconnect();
    }
  });
});
