import {
  encodeJson,
  silentLogger,
  type Logger,
  type ResultBackend,
  type ResultMeta,
  type StoreOptions,
} from "@celery-ts/core";
import { closedError, durationOption, toMs } from "@celery-ts/core/driver";
import type { Redis } from "ioredis";
import { redisChords } from "./internal/chords.ts";
import { PKG } from "./internal/errors.ts";
import { runScript, STORE_RESULT } from "./internal/scripts.ts";
import { sendNow } from "./internal/send-now.ts";
import { duplicateClient, Link, resolveConnection, type RedisConnection } from "./internal/link.ts";
import { prepareResult, serverOf, type ResultWrite } from "./internal/prepared-store.ts";
import { decodeResult, ResultSubscriber } from "./internal/result-subscriber.ts";

export interface RedisBackendOptions {
  /**
   * The Redis server: a URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://`,
   * `redis+sentinel://...?master_name=`), ioredis options, or an ioredis client. A client given
   * here stays yours: `close()` leaves it open. `waitFor()` opens one more connection (a duplicate)
   * for its subscriptions, shared by every waiter.
   * @default "redis://127.0.0.1:6379/0"
   */
  connection?: RedisConnection;
  /**
   * Seconds after which Redis deletes a result, unless `store()` says otherwise; 0 keeps them
   * forever. Celery's `result_expires`.
   * @default 86400 (one day), or the URL's `?result_expires=`
   */
  expires?: number;
  /**
   * Put before the result keys (and so before their pub/sub channels), like kombu's
   * `global_keyprefix`. Python clients must use the same prefix.
   * @default "", or the URL's `?global_keyprefix=`
   */
  keyPrefix?: string;
  /**
   * Seconds `store()`, `get()` and `forget()` wait for a lost connection to come back before
   * they reject with a retryable `CONNECTION` error.
   * @default 5
   */
  offlineTimeout?: number;
  /**
   * How many reconnect attempts in a row a lost connection may fail before it stops trying until
   * the backend is next used (each use then tries once more). As the transport's option.
   * @default Infinity, or the URL's `?reconnect_attempts=`
   */
  reconnectAttempts?: number;
  /** Where connection losses and recoveries are reported. @default silentLogger */
  logger?: Logger;
}

/** The bounds of `expires`: 0 (keep forever) is allowed. */
const ZERO_ALLOWED = { zero: true } as const;

/** Celery's key prefix for task results (`BaseKeyValueStoreBackend.task_keyprefix`). */
const TASK_KEY_PREFIX = "celery-task-meta-";

/**
 * Task results in Redis, laid out as Celery's Redis backend lays them out: the key
 * `celery-task-meta-<task id>` holds the JSON meta, with an expiry, and each store is published on
 * a channel of the same name, so a waiting client (Python or TypeScript) wakes at once.
 */
export function createRedisBackend(options: RedisBackendOptions | string = {}): ResultBackend {
  const opts: RedisBackendOptions = typeof options === "string" ? { connection: options } : options;
  const logger = opts.logger ?? silentLogger;
  const resolved = resolveConnection(opts.connection, opts.reconnectAttempts);
  const expiry = (value: number | undefined, fallback: number): number =>
    durationOption(PKG, "expires", value, fallback, ZERO_ALLOWED);
  const defaultExpiry = expiry(opts.expires ?? resolved.fromUrl.expires, 86_400);
  const offlineTimeoutMs = toMs(durationOption(PKG, "offlineTimeout", opts.offlineTimeout, 5));
  const keyPrefix = opts.keyPrefix ?? resolved.fromUrl.keyPrefix ?? "";
  const keyOf = (taskId: string): string => `${keyPrefix}${TASK_KEY_PREFIX}${taskId}`;
  const { target } = resolved;
  const main = new Link(resolved.client, {
    role: "command",
    target,
    logger,
    owned: resolved.owned,
    what: "result backend",
    reconnectAttempts: resolved.reconnectAttempts,
  });
  const server = serverOf(resolved.client);
  const ttlMsOf = (expires: number): number => (expires > 0 ? Math.ceil(toMs(expires)) : 0);
  const defaultTtlMs = ttlMsOf(defaultExpiry);
  const resultWrite = (taskId: string, meta: ResultMeta, store: StoreOptions): ResultWrite => {
    const ttlMs =
      store.expires === undefined ? defaultTtlMs : ttlMsOf(expiry(store.expires, defaultExpiry));
    return { server, key: keyOf(taskId), value: encodeJson(meta), ttlMs };
  };
  let closed = false;
  const run = <T>(work: (client: Redis) => Promise<T>): Promise<T> => {
    if (closed) throw closedError(PKG, "Redis result backend");
    return main.run(offlineTimeoutMs, work);
  };
  const results = new ResultSubscriber({
    newClient: () => duplicateClient(resolved.client, "results"),
    mget: (keys) =>
      main.run(
        offlineTimeoutMs,
        (client) => sendNow(client, "mget", keys, "utf8") as Promise<(string | null)[]>,
      ),
    target,
    logger,
    reconnectAttempts: resolved.reconnectAttempts,
    closed: () => closed,
  });

  return {
    name: "redis",
    ...redisChords({ run: async (work) => run(work), keyPrefix, expires: defaultExpiry }),
    async connect() {
      await main.waitReady(offlineTimeoutMs);
    },
    async close() {
      if (closed) return;
      closed = true;
      await results.close(closedError(PKG, "Redis result backend"));
      await main.close();
    },
    async store(taskId: string, meta: ResultMeta, store: StoreOptions = {}) {
      const { key, value, ttlMs } = resultWrite(taskId, meta, store);
      // SET, then PUBLISH on the key's own channel (Celery's), the meta as the message so that
      // waiters need no GET: one script, so one command per result.
      await run((client) => runScript(client, STORE_RESULT, [key], [value, ttlMs]));
    },
    prepareStore(taskId, meta, store = {}) {
      if (closed) throw closedError(PKG, "Redis result backend");
      return prepareResult(taskId, resultWrite(taskId, meta, store));
    },
    async get(taskId) {
      const key = keyOf(taskId);
      const value = await run((client) => client.get(key));
      return value === null ? undefined : decodeResult(key, value);
    },
    waitFor(taskId, waitOptions) {
      if (closed) return Promise.reject(closedError(PKG, "Redis result backend"));
      return results.wait(keyOf(taskId), taskId, waitOptions);
    },
    async forget(taskId) {
      const key = keyOf(taskId);
      await run((client) => client.del(key));
    },
  };
}
