import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { testServers } from "@celery-ts/testing";
import { afterAll } from "vitest";

/** The Redis (and database) of this test run: CELERY_TS_REDIS_URL, see docs/testing.md. */
export const REDIS_URL = testServers().redisUrl;

/** A key prefix unique to one test file (or test): keeps kombu's fixed key names apart. */
export function uniquePrefix(label: string): string {
  return `celery-ts-test:${label}:${randomUUID()}:`;
}

/** A plain client for inspecting keys; closed after the file. */
export function rawClient(url = REDIS_URL): Redis {
  const client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  client.on("error", () => undefined);
  afterAll(async () => {
    await client.quit().catch(() => client.disconnect());
  });
  return client;
}

/** Deletes every key under a prefix (SCAN, never FLUSHDB: the server is shared). */
export async function deletePrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(
      cursor,
      "MATCH",
      `${prefix.replace(/([*?[\]\\])/g, "\\$1")}*`,
      "COUNT",
      500,
    );
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== "0");
}

/** Kills every connection whose name starts with `name`, as a network failure or a crash would. */
export async function killConnections(raw: Redis, name: string): Promise<number> {
  const list = String(await raw.client("LIST"));
  const ids = list
    .split("\n")
    .filter((line) => line.includes(` name=${name}`))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined);
  for (const id of ids) await raw.client("KILL", "ID", id).catch(() => undefined);
  return ids.length;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = "a condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
