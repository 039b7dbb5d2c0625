// Shared by the Redis/SQLite and PostgreSQL unique-task tests: two producers on one broker URL.
import { randomUUID } from "node:crypto";
import { declareTask, resolveStore, resolveTransport } from "@celery-ts/core";
import { createClient } from "@celery-ts/client";
import { expect } from "vitest";

/**
 * Two clients on the broker's URL (the coordination store is the broker's) send a unique task
 * four times, three with one key, side by side: one message per key is queued, the sends of a
 * key share its handle, and the store holds one key each. Deletes its messages and keys.
 */
export async function uniqueAcrossProducers(url: string, taskName: string): Promise<void> {
  const queue = `unique-${randomUUID()}`;
  const task = declareTask<[string]>(taskName, {
    queue,
    unique: { key: (account) => account, ttl: 30 },
  });
  const [one, two] = [createClient({ broker: url }), createClient({ broker: url })];
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
    expect(sends[2]!.id).toBe(sends[0]!.id);
    expect(await transport.purge(queue)).toBe(2);
    expect((await store.list(`unique:${taskName}:`)).length).toBe(2);
  } finally {
    for (const { key, value } of await store.list(`unique:${taskName}:`)) {
      await store.deleteIfEquals(key, value);
    }
    await Promise.all([one.close(), two.close(), transport.close(), store.close()]);
  }
}
