import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { declareTask, resolveStore, resolveTransport } from "@celery-ts/core";
import { deleteRedisPrefix, testServers } from "@celery-ts/testing";
import { afterAll, describe, expect, it } from "vitest";
import { createClient } from "@celery-ts/client";

const dir = mkdtempSync(join(tmpdir(), "celery-ts-unique-"));
const REDIS = testServers().redisUrl;
const prefix = `celery-ts-test:unique:${randomUUID()}:`;

const brokers = [
  { name: "sqlite", url: `sqlite:///${join(dir, "queue.db")}` },
  { name: "redis", url: `${REDIS}?global_keyprefix=${prefix}` },
];

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await deleteRedisPrefix(REDIS, prefix);
});

describe.each(brokers)("unique tasks across producers on $name", ({ url }) => {
  it("two clients on the broker's URL queue one task and share its handle", async () => {
    const queue = `unique-${randomUUID()}`;
    const task = declareTask<[string]>("u.sync_account", {
      queue,
      unique: { key: (a) => a, ttl: 30 },
    });
    const one = createClient({ broker: url });
    const two = createClient({ broker: url });
    const transport = await resolveTransport(url);
    const store = await resolveStore(url);
    try {
      const sends = await Promise.all([
        one.task(task).delay("acct-1"),
        two.task(task).delay("acct-1"),
        one.task(task).delay("acct-1"),
        two.task(task).delay("acct-2"),
      ]);
      expect(new Set(sends.map((s) => s.id)).size).toBe(2);
      expect(sends[1]!.id).toBe(sends[0]!.id);
      expect(await transport.purge(queue)).toBe(2);
    } finally {
      for (const { key } of await store.list("unique:u.sync_account:")) {
        const value = await store.get(key);
        if (value !== undefined) await store.deleteIfEquals(key, value);
      }
      await Promise.all([one.close(), two.close(), transport.close(), store.close()]);
    }
  });
});
