import {
  CeleryTsError,
  createResultWaiters,
  decodeJson,
  encodeJson,
  isReadyState,
  silentLogger,
  type Logger,
  type ResultBackend,
  type ResultMeta,
  type StoreOptions,
  type WaitOptions,
} from "@celery-ts/core";
import { closedError, configError, connectionError, PKG } from "./internal/errors.ts";
import { duplicateClient, Link, resolveConnection, type RedisConnection } from "./internal/link.ts";
import { durationOption } from "./internal/options.ts";

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
   * Results are deleted by Redis after this long, unless `store()` says otherwise; 0 keeps them
   * forever. Celery's `result_expires`.
   * @default 86_400_000 (one day), or the URL's `?result_expires=` in seconds
   */
  expiresInMs?: number;
  /**
   * Put before the result keys (and so before their pub/sub channels), like kombu's
   * `global_keyprefix`. Python clients must use the same prefix.
   * @default "", or the URL's `?global_keyprefix=`
   */
  keyPrefix?: string;
  /**
   * How long `store()`, `get()` and `forget()` wait for a lost connection to come back before
   * they reject with a retryable `CONNECTION` error.
   * @default 5_000
   */
  offlineTimeoutMs?: number;
  /** Where connection losses and recoveries are reported. @default silentLogger */
  logger?: Logger;
}

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
  const resolved = resolveConnection(opts.connection);
  const defaultExpiry = opts.expiresInMs ?? resolved.fromUrl.expiresInMs ?? 86_400_000;
  if (!(Number.isFinite(defaultExpiry) && defaultExpiry >= 0)) {
    throw configError(
      `expiresInMs must be a number of milliseconds >= 0 (0: never), got ${String(defaultExpiry)}`,
    );
  }
  const offlineTimeoutMs = durationOption("offlineTimeoutMs", opts.offlineTimeoutMs, 5_000);
  const prefix = `${opts.keyPrefix ?? resolved.fromUrl.keyPrefix ?? ""}${TASK_KEY_PREFIX}`;
  const { target } = resolved;
  const main = new Link(resolved.client, {
    role: "command",
    target,
    logger,
    owned: resolved.owned,
    what: "result backend",
  });
  let subscriber: Link | undefined;
  let closed = false;
  /** Pending waitFor() calls by key: one subscription per task serves them all. */
  const waiters = createResultWaiters({
    onIdle(key) {
      if (!closed && subscriber?.isReady) subscriber.client.unsubscribe(key).catch(() => undefined);
    },
  });

  const keyOf = (taskId: string): string => `${prefix}${taskId}`;

  const decode = (key: string, text: string): ResultMeta => {
    try {
      return decodeJson(text) as ResultMeta;
    } catch (error) {
      throw new CeleryTsError(
        "MALFORMED_MESSAGE",
        `the result at ${key} is not JSON (${(error as Error).message})`,
        { pkg: PKG, cause: error },
      );
    }
  };

  /** Resolves every waiter of `key` with its own copy of the meta, if it is a ready state. */
  const deliver = (key: string, text: string): void => {
    if (!waiters.has(key)) return;
    let meta: ResultMeta;
    try {
      meta = decode(key, text);
    } catch (error) {
      logger.warn("redis: ignored a result that is not JSON", { key, error: String(error) });
      return;
    }
    if (!isReadyState(meta.status)) return;
    waiters.resolve(key, () => decode(key, text));
  };

  /** Reads the keys that have waiters; covers results stored while we were not subscribed. */
  const recheck = async (keys: string[]): Promise<void> => {
    if (keys.length === 0) return;
    const values = await main.run(offlineTimeoutMs, (client) => client.mget(...keys));
    keys.forEach((key, i) => {
      const value = values[i];
      if (value) deliver(key, value);
    });
  };

  const subscription = (): Link => {
    if (subscriber) return subscriber;
    const link = new Link(duplicateClient(resolved.client, "results"), {
      role: "results",
      target,
      logger,
      owned: true,
      what: "result backend",
    });
    // On every (re)connection: subscribe to every pending task again, then read them all, as
    // Celery's ResultConsumer does after a reconnect (results stored meanwhile were not heard).
    link.onReady(() => {
      const keys = waiters.keys();
      if (keys.length === 0) return;
      link.client
        .subscribe(...keys)
        .then(() => recheck(keys))
        .catch((error: unknown) => {
          logger.debug("redis: could not subscribe to pending results; retrying on reconnect", {
            error: String(error),
          });
        });
    });
    link.client.on("message", (channel: string, message: string) => deliver(channel, message));
    subscriber = link;
    return link;
  };

  return {
    name: "redis",
    async connect() {
      await main.waitReady(offlineTimeoutMs);
    },
    async close() {
      if (closed) return;
      closed = true;
      waiters.rejectAll(closedError("result backend"));
      await subscriber?.close();
      await main.close();
    },
    async store(taskId: string, meta: ResultMeta, store: StoreOptions = {}) {
      if (closed) throw closedError("result backend");
      const expiresInMs = store.expiresInMs ?? defaultExpiry;
      if (!(Number.isFinite(expiresInMs) && expiresInMs >= 0)) {
        throw configError(`expiresInMs must be a number of milliseconds >= 0, got ${expiresInMs}`);
      }
      const key = keyOf(taskId);
      const value = encodeJson(meta);
      await main.run(offlineTimeoutMs, async (client) => {
        const transaction = client.multi();
        if (expiresInMs > 0) transaction.set(key, value, "PX", Math.ceil(expiresInMs));
        else transaction.set(key, value);
        // Celery's channel is the key itself; the message is the meta, so waiters need no GET.
        transaction.publish(key, value);
        const results = await transaction.exec();
        if (!results) throw new Error("Connection is closed (transaction aborted)");
        for (const [error] of results) if (error) throw error;
      });
    },
    async get(taskId) {
      if (closed) throw closedError("result backend");
      const key = keyOf(taskId);
      const value = await main.run(offlineTimeoutMs, (client) => client.get(key));
      return value === null ? undefined : decode(key, value);
    },
    waitFor(taskId: string, options: WaitOptions) {
      if (closed) return Promise.reject(closedError("result backend"));
      const { timeoutMs } = options;
      const key = keyOf(taskId);
      const link = subscription();
      const first = !waiters.has(key);
      const waiting = waiters.wait(key, {
        ...options,
        timeoutError: () =>
          link.isReady
            ? new CeleryTsError("TIMEOUT", `no result for task ${taskId} within ${timeoutMs} ms`, {
                pkg: PKG,
                retryable: true,
              })
            : connectionError(
                `no result for task ${taskId} within ${timeoutMs} ms: the connection to Redis at ` +
                  `${target} is down`,
              ),
      });
      if (!waiters.has(key)) return waiting; // the signal had aborted already
      // Subscribe first, then read: a result stored in between is heard, one stored before is read.
      const subscribed = link.isReady
        ? first
          ? link.client.subscribe(key)
          : Promise.resolve()
        : // Not connected yet (or reconnecting): the ready handler subscribes and reads.
          link.waitReady(Number.POSITIVE_INFINITY).then(() => undefined);
      subscribed
        .then(() => recheck([key]))
        .catch((error: unknown) => {
          logger.debug("redis: could not subscribe to a result yet; waiting for the connection", {
            key,
            error: String(error),
          });
        });
      return waiting;
    },
    async forget(taskId) {
      if (closed) throw closedError("result backend");
      const key = keyOf(taskId);
      await main.run(offlineTimeoutMs, (client) => client.del(key));
    },
  };
}
