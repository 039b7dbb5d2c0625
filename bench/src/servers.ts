// The servers of the run, from the tests' environment variables (docs/testing.md): any Redis URL
// and database, any RabbitMQ vhost. The bench never flushes a database: every key it makes starts
// with a prefix of its own, and it deletes its keys by that prefix.
import { deleteRedisPrefix, testServers } from "@celery-ts/testing";
import { Redis } from "ioredis";

export const SERVERS = testServers();

/** `pnpm bench --quick`: fewer tasks and one round, for use while developing. */
export const QUICK = process.argv.includes("--quick") || process.env.BENCH_QUICK === "1";

/** Interleaved rounds per scenario: the report gives their median and spread. */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));

let serial = 0;
/** A fresh key prefix of this run: `celery-ts-bench:<pid>:<n>:`. */
export const newPrefix = (): string => `celery-ts-bench:${process.pid}:${++serial}:`;

/** A URL with `?global_keyprefix=` added (kombu's option, read by celery-ts's Redis URLs too). */
export function withPrefix(url: string, prefix: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}global_keyprefix=${encodeURIComponent(prefix)}`;
}

/** Deletes every key that starts with `prefix`, and the given keys. */
export async function dropKeys(prefix: string, extra: readonly string[] = []): Promise<void> {
  await deleteRedisPrefix(SERVERS.redisUrl, prefix);
  if (extra.length === 0) return;
  const redis = new Redis(SERVERS.redisUrl);
  try {
    for (let i = 0; i < extra.length; i += 1000) await redis.unlink(...extra.slice(i, i + 1000));
  } finally {
    redis.disconnect();
  }
}

/** How many of `keys` exist (EXISTS, 5,000 at a time). */
export async function countExisting(redis: Redis, keys: readonly string[]): Promise<number> {
  let found = 0;
  for (let i = 0; i < keys.length; i += 5000)
    found += await redis.exists(...keys.slice(i, i + 5000));
  return found;
}
