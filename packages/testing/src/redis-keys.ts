/**
 * Deletes every key under `prefix` on a Redis server (SCAN and DEL, never FLUSHDB: test servers
 * are shared). For tests that isolate themselves with a `global_keyprefix`. Needs `ioredis`.
 */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const pattern = `${prefix.replace(/([*?[\]\\])/g, "\\$1")}*`;
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}
