import {
  CeleryTsError,
  silentLogger,
  storeIncrementBy,
  storeTtlMs,
  type CoordinationStore,
  type Logger,
  type StoreEntry,
} from "@celery-ts/core";
import { closedError, durationOption, toMs } from "@celery-ts/core/driver";
import type { Redis } from "ioredis";
import { redisAtomicPublisher } from "./internal/atomic-publish.ts";
import { PKG } from "./internal/errors.ts";
import { Link, resolveConnection, type RedisConnection } from "./internal/link.ts";
import { runScript } from "./internal/scripts.ts";
import {
  COMPARE_AND_SET,
  compareAndSetArgs,
  DELETE_IF_EQUALS,
  INCREMENT,
} from "./internal/store-scripts.ts";

export interface RedisStoreOptions {
  /**
   * The Redis server: a URL, ioredis options, or an ioredis client (which stays yours: `close()`
   * leaves it open). It may be the broker's server.
   * @default "redis://127.0.0.1:6379/0"
   */
  connection?: RedisConnection;
  /**
   * Put before every key, then `celery-ts:store:`, as kombu's `global_keyprefix` is put before
   * broker keys.
   * @default "", or the URL's `?global_keyprefix=`
   */
  keyPrefix?: string;
  /**
   * Seconds an operation waits for a lost connection to come back before it rejects with a
   * retryable `CONNECTION` error.
   * @default 5
   */
  offlineTimeout?: number;
  /** Where connection losses and recoveries are reported. @default silentLogger */
  logger?: Logger;
}

/** Keeps the store's keys apart from kombu's queues and Celery's results. */
const STORE_NAMESPACE = "celery-ts:store:";

function globPattern(prefix: string): string {
  return `${prefix.replace(/([*?[\]\\])/g, "\\$1")}*`;
}

/** The entries whose key starts with `prefix` + `listPrefix`, sorted, without the prefix. */
async function scanEntries(
  client: Redis,
  prefix: string,
  listPrefix: string,
): Promise<StoreEntry[]> {
  const keys = new Set<string>();
  let cursor = "0";
  do {
    const [next, found] = await client.scan(
      cursor,
      "MATCH",
      globPattern(`${prefix}${listPrefix}`),
      "COUNT",
      1_000,
    );
    cursor = next;
    for (const key of found) keys.add(key);
  } while (cursor !== "0");
  const sorted = [...keys].sort();
  const values = sorted.length > 0 ? await client.mget(...sorted) : [];
  const entries: StoreEntry[] = [];
  sorted.forEach((key, i) => {
    const value = values[i];
    // A key that expired between SCAN and MGET is gone.
    if (value !== null && value !== undefined) {
      entries.push({ key: key.slice(prefix.length), value });
    }
  });
  return entries;
}

/** ttl()'s answer from PTTL's: -2 when the key is absent, -1 when it has no expiry. */
function secondsLeft(pttl: number): number | undefined {
  if (pttl === -2) return undefined;
  return pttl === -1 ? Infinity : pttl / 1000;
}

/** increment()'s error when the key holds something else than a counter. */
function notACounter(key: string, error: unknown): unknown {
  if (!String((error as Error)?.message).includes("not an integer")) return error;
  return new CeleryTsError(
    "CONFIG",
    `the value at ${JSON.stringify(key)} is not a counter: increment() only works on ` +
      "keys that increment() created",
    { pkg: PKG, cause: error },
  );
}

/** The store's connection: its keys, and `run` (a command, waiting a while for a lost link). */
function storeConnection(options: RedisStoreOptions | string) {
  const opts: RedisStoreOptions = typeof options === "string" ? { connection: options } : options;
  const resolved = resolveConnection(opts.connection);
  const offlineTimeoutMs = toMs(durationOption(PKG, "offlineTimeout", opts.offlineTimeout, 5));
  const prefix = `${opts.keyPrefix ?? resolved.fromUrl.keyPrefix ?? ""}${STORE_NAMESPACE}`;
  const link = new Link(resolved.client, {
    role: "store",
    target: resolved.target,
    logger: opts.logger ?? silentLogger,
    owned: resolved.owned,
    what: "coordination store",
  });
  let closed = false;
  const ensureOpen = (): void => {
    if (closed) throw closedError(PKG, "Redis coordination store");
  };
  return {
    resolved,
    prefix,
    keyOf: (key: string): string => `${prefix}${key}`,
    /** Runs `work` on the connection (waiting a while for a lost one), once open. */
    run<T>(work: (client: Redis) => Promise<T>): Promise<T> {
      ensureOpen();
      return link.run(offlineTimeoutMs, work);
    },
    async connect(): Promise<void> {
      ensureOpen();
      await link.waitReady(offlineTimeoutMs);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await link.close();
    },
  };
}

/**
 * The coordination store in Redis: one Redis key per store key, `[keyPrefix]celery-ts:store:<key>`;
 * Redis's own expiry; compare-and-set, delete-if-equals and increment as Lua scripts, so each is
 * one atomic step on the server. `list()` uses SCAN: meant for small sets.
 */
export function createRedisStore(options: RedisStoreOptions | string = {}): CoordinationStore {
  const { resolved, prefix, keyOf, run, connect, close } = storeConnection(options);

  return {
    name: "redis",
    connect,
    close,
    async get(key) {
      const value = await run((client) => client.get(keyOf(key)));
      return value ?? undefined;
    },
    async ttl(key) {
      return secondsLeft(await run((client) => client.pttl(keyOf(key))));
    },
    async setIfAbsent(key, value, ttl) {
      const ttlMs = storeTtlMs(ttl, PKG);
      const reply = await run((client) =>
        ttlMs === undefined
          ? client.set(keyOf(key), value, "NX")
          : client.set(keyOf(key), value, "PX", ttlMs, "NX"),
      );
      return reply === "OK";
    },
    async compareAndSet(key, expected, value, cas = {}) {
      const args = compareAndSetArgs(expected, value, cas);
      const fenceKey = keyOf(cas.fence?.key ?? key);
      const reply = await run((client) =>
        runScript(client, COMPARE_AND_SET, [keyOf(key), fenceKey], args),
      );
      return reply === 1;
    },
    async deleteIfEquals(key, expected) {
      const reply = await run((client) =>
        runScript(client, DELETE_IF_EQUALS, [keyOf(key)], [expected]),
      );
      return reply === 1;
    },
    async list(listPrefix) {
      return run((client) => scanEntries(client, prefix, listPrefix));
    },
    async increment(key, increment) {
      const by = storeIncrementBy(increment, PKG);
      const ttlMs = storeTtlMs(increment, PKG) ?? 0;
      try {
        const reply = await run((client) =>
          runScript(client, INCREMENT, [keyOf(key)], [by, ttlMs]),
        );
        return Number(reply);
      } catch (error) {
        throw notACounter(key, error);
      }
    },
    // A Redis transport on this database: its publish and a compare-and-set, in one script.
    atomicPublisher: (transport) =>
      redisAtomicPublisher({ target: resolved.target, keyOf, run }, transport),
  };
}
