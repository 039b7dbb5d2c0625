import type { PreparedStore } from "@celery-ts/core";
import type { Redis } from "ioredis";

/** Where a prepared result's Redis write is kept: a registered symbol, so duplicate installs agree. */
const WRITE = Symbol.for("celery-ts.redis.prepared-store");

/** What storing one result writes: Celery's key, the meta as JSON, the expiry in ms (0: none). */
export interface ResultWrite {
  /** The server and database it is for (see `serverOf`). */
  server: string;
  key: string;
  value: string;
  ttlMs: number;
}

/**
 * Which server and database a client talks to, as the user that it logs in as, with the ioredis
 * `keyPrefix` its commands get: a result written by a broker connection with the same identity
 * lands where the backend would have written it (a client given with another ioredis keyPrefix
 * would write the result, and publish it, under keys the backend never reads).
 */
export function serverOf(client: Redis): string {
  const { options } = client;
  const where = options.sentinels?.length
    ? `sentinel:${options.name ?? ""}@${options.sentinels
        .map((s) => `${s.host ?? "127.0.0.1"}:${s.port ?? 26_379}`)
        .sort()
        .join(",")}`
    : (options.path ?? `${options.host ?? "127.0.0.1"}:${options.port ?? 6379}`);
  return `${options.username ?? ""}@${where}/${options.db ?? 0}#${options.keyPrefix ?? ""}`;
}

/** A result the Redis backend prepared, for a Redis transport to write with its ack. */
export function prepareResult(taskId: string, write: ResultWrite): PreparedStore {
  return { taskId, [WRITE]: write } as PreparedStore;
}

/** The write of a result prepared by a Redis backend for `server`, else undefined. */
export function resultWriteFor(
  result: PreparedStore | undefined,
  server: string,
): ResultWrite | undefined {
  const write = (result as { [WRITE]?: ResultWrite } | undefined)?.[WRITE];
  return write?.server === server ? write : undefined;
}
