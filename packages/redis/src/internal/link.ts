import { CeleryTsError, isCeleryTsError, type ConnectionEvent, type Logger } from "@celery-ts/core";
import { Redis, type RedisOptions } from "ioredis";
import { backoffDelay, closedError, connectionError, toMs } from "@celery-ts/core/driver";
import { isAuthError, mapRedisError, PKG } from "./errors.ts";
import { parseRedisUrl, type ParsedRedisUrl } from "./parse-url.ts";

/** How to reach Redis: a URL, ioredis options, or a client the caller owns. */
export type RedisConnection = string | RedisOptions | Redis;

/** Reconnection delays (ms): the kit's backoff from 0.1 s up to 3 s, jittered so a fleet does not stampede. */
export function defaultRetryStrategy(times: number): number {
  return Math.round(toMs(backoffDelay(times, { initial: 0.1, max: 3 })));
}

/**
 * Options for the connections we create. No offline queue and no resending: an operation waits
 * (a bounded time) for the connection to be ready and is then sent once, so a command can never
 * sit in a queue past the caller's deadline and run later behind its back.
 */
const OWNED_DEFAULTS: Omit<RedisOptions, "replyMapping"> = {
  lazyConnect: true,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  autoResubscribe: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 5_000,
  retryStrategy: defaultRetryStrategy,
  // Commands issued in the same tick (many tasks finishing at once) share one write.
  enableAutoPipelining: true,
  // RESP2, as kombu and redis-py speak (ioredis 6 defaults to RESP3): client-tracking
  // invalidations then arrive as pub/sub messages on the wake-up connection.
  protocol: 2,
};

/** The options a duplicate gets, whatever the original's: we re-subscribe and re-arm ourselves. */
const DUPLICATE_OVERRIDES: RedisOptions = {
  lazyConnect: true,
  protocol: 2,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  autoResubscribe: false,
  maxRetriesPerRequest: 0,
};

/** ioredis refused to write the command: it never reached the server. */
function isUnsent(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("Stream isn't writeable");
}

export function isRedisClient(value: unknown): value is Redis {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Redis).duplicate === "function" &&
    typeof (value as Redis).sendCommand === "function" &&
    typeof (value as Redis).status === "string"
  );
}

function describeTarget(options: RedisOptions): string {
  const db = options.db ?? 0;
  if (options.sentinels?.length) {
    const hosts = options.sentinels.map((s) => `${s.host ?? "127.0.0.1"}:${s.port ?? 26_379}`);
    return `Sentinel master "${options.name ?? "?"}" (db ${db}) via ${hosts.join(",")}`;
  }
  if (options.path) return `${options.path} (db ${db})`;
  return `${options.host ?? "127.0.0.1"}:${options.port ?? 6379}/${db}`;
}

export interface ResolvedConnection {
  client: Redis;
  /** True when we created the client, so closing it is ours to do. */
  owned: boolean;
  target: string;
  /** The options a URL set beside the connection (visibility timeout, key prefix, expiry). */
  fromUrl: Omit<ParsedRedisUrl, "redis" | "target">;
}

/**
 * A client with celery-ts's defaults. Replies are read in ioredis's "legacy" shapes (arrays, not
 * RESP3 maps), so a `replyMapping` other than that is refused rather than misread.
 */
function newClient(options: RedisOptions): Redis {
  const { replyMapping, ...rest } = options;
  if (replyMapping !== undefined && replyMapping !== "legacy") {
    throw new CeleryTsError(
      "CONFIG",
      `ioredis's replyMapping "${replyMapping}" is not supported: leave it unset (celery-ts reads ` +
        "the legacy reply shapes)",
      { pkg: PKG },
    );
  }
  return new Redis<"legacy">({ ...OWNED_DEFAULTS, ...rest });
}

/** Builds (or adopts) the main client. No I/O: the connection opens on first use. */
export function resolveConnection(connection: RedisConnection | undefined): ResolvedConnection {
  if (isRedisClient(connection)) {
    return {
      client: connection,
      owned: false,
      target: describeTarget(connection.options),
      fromUrl: {},
    };
  }
  if (connection === undefined || typeof connection === "string") {
    const { redis, target, ...fromUrl } = parseRedisUrl(connection ?? "redis://127.0.0.1:6379/0");
    return { client: newClient(redis), owned: true, target, fromUrl };
  }
  if (typeof connection !== "object" || connection === null) {
    throw new CeleryTsError(
      "CONFIG",
      "connection must be a redis:// URL, ioredis options or an ioredis client",
      { pkg: PKG },
    );
  }
  if (connection.keyPrefix) {
    throw new CeleryTsError(
      "CONFIG",
      "ioredis's keyPrefix does not apply to every key celery-ts uses; use the keyPrefix option " +
        "of celery-ts (kombu's global_keyprefix) instead",
      { pkg: PKG },
    );
  }
  return {
    client: newClient(connection),
    owned: true,
    target: describeTarget(connection),
    fromUrl: {},
  };
}

interface ReadyWaiter {
  settle(error?: unknown): void;
}

export interface LinkOptions {
  /** What this connection is for, in logs: "command", "consumer", "wake-up", "results". */
  role: string;
  target: string;
  logger: Logger;
  owned: boolean;
  /** What is closed when this link is, for CLOSED errors: "transport", "result backend". */
  what: string;
  /** Told of each loss (after the connection had been up) and each recovery, as they are logged. */
  onEvent?: (event: ConnectionEvent) => void;
}

/**
 * One ioredis connection and what we know of its health: waits for it to be ready within a
 * deadline, maps its errors, logs losses and recoveries once each, and runs callbacks on every
 * (re)connection so that subscriptions and client tracking can be set up again.
 */
export class Link {
  readonly client: Redis;
  readonly target: string;
  readonly #options: LinkOptions;
  #everReady = false;
  #lost = false;
  #closed = false;
  #lastError: unknown;
  readonly #readyCallbacks = new Set<() => void>();
  readonly #waiters = new Set<ReadyWaiter>();
  readonly #detach: () => void;

  constructor(client: Redis, options: LinkOptions) {
    this.client = client;
    this.target = options.target;
    this.#options = options;
    // A client given to us may be connected already: its "ready" has come and gone.
    this.#everReady = client.status === "ready";
    const { logger, role } = options;
    // Which part's connection, so that a worker's transport and backend (each with a command
    // connection) log distinct lines: "redis transport: lost the command connection ...".
    const name = `redis ${options.what}`;
    const onError = (error: unknown): void => {
      this.#lastError = error;
      // Wrong credentials will not get better by waiting: tell every waiter now.
      if (isAuthError(error) && this.#waiters.size > 0) {
        this.#settleWaiters(mapRedisError(error, this.target));
        this.#stopIfAbandoned();
      }
      if (this.#everReady && !this.#lost && !this.#closed) {
        this.#lost = true;
        logger.warn(`${name}: lost the ${role} connection to ${this.target}; reconnecting`, {
          error: String((error as Error)?.message ?? error),
        });
        options.onEvent?.({ type: "lost", role });
      } else {
        logger.debug(`redis: ${role} connection to ${this.target} failed`, {
          error: String((error as Error)?.message ?? error),
        });
      }
    };
    const onClose = (): void => {
      if (this.#everReady && !this.#lost && !this.#closed) {
        this.#lost = true;
        logger.warn(`${name}: lost the ${role} connection to ${this.target}; reconnecting`);
        options.onEvent?.({ type: "lost", role });
      }
    };
    const onReconnecting = (delay: unknown): void => {
      if (!this.#closed)
        logger.debug(`redis: reconnecting the ${role} connection in ${String(delay)} ms`);
    };
    const onReady = (): void => {
      if (this.#lost) {
        logger.info(`${name}: reconnected the ${role} connection to ${this.target}`);
        options.onEvent?.({ type: "recovered", role });
      }
      this.#lost = false;
      this.#everReady = true;
      this.#settleWaiters();
      this.#readyCallbacks.forEach((callback) => callback());
    };
    const onEnd = (): void => {
      this.#settleWaiters(
        this.#closed ? closedError(PKG, `Redis ${options.what}`) : this.#unreachable(Number.NaN),
      );
    };
    client.on("error", onError);
    client.on("close", onClose);
    client.on("reconnecting", onReconnecting);
    client.on("ready", onReady);
    client.on("end", onEnd);
    this.#detach = () => {
      client.off("error", onError);
      client.off("close", onClose);
      client.off("reconnecting", onReconnecting);
      client.off("ready", onReady);
      client.off("end", onEnd);
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  get isReady(): boolean {
    return this.client.status === "ready";
  }

  /** Runs `callback` each time the connection becomes ready, the first time included. */
  onReady(callback: () => void): void {
    this.#readyCallbacks.add(callback);
  }

  /** Maps an error of this connection to a CeleryTsError (or passes a bug through). */
  map(error: unknown): unknown {
    if (this.#closed) return closedError(PKG, `Redis ${this.#options.what}`);
    return mapRedisError(error, this.target);
  }

  /**
   * Connects if need be and waits until the connection is ready: at most `timeoutMs` (then a
   * retryable CONNECTION error naming the server and the last failure), or until `signal` aborts.
   * Wrong credentials reject at once with a CONFIG error.
   */
  waitReady(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(closedError(PKG, `Redis ${this.#options.what}`));
    const { client } = this;
    if (client.status === "ready") return Promise.resolve();
    if (client.status === "end") {
      if (!this.#options.owned) {
        return Promise.reject(
          new CeleryTsError(
            "CONNECTION",
            `the ioredis client given for ${this.target} was closed; give celery-ts an open client`,
            { pkg: PKG },
          ),
        );
      }
      client.connect().catch(() => undefined);
    } else if (client.status === "wait") {
      client.connect().catch(() => undefined);
    }
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: ReadyWaiter = {
        settle: (error) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          this.#waiters.delete(waiter);
          if (error === undefined) resolve();
          else reject(error);
        },
      };
      const onAbort = (): void => waiter.settle(signal?.reason);
      this.#waiters.add(waiter);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          waiter.settle(this.#unreachable(timeoutMs));
          this.#stopIfAbandoned();
        }, timeoutMs);
      }
    });
  }

  /**
   * A connection that never came up stops retrying once nothing waits for it: a reconnect loop
   * would keep the process alive. The next operation starts it again.
   */
  #stopIfAbandoned(): void {
    if (!this.#everReady && this.#options.owned && !this.#closed && this.#waiters.size === 0) {
      this.client.disconnect();
    }
  }

  #settleWaiters(error?: unknown): void {
    for (const waiter of [...this.#waiters]) waiter.settle(error);
  }

  #unreachable(timeoutMs: number): CeleryTsError {
    const last = this.#lastError;
    const mapped = last === undefined ? undefined : mapRedisError(last, this.target);
    const reason = last === undefined ? "" : ` (${String((last as Error)?.message ?? last)})`;
    if (isCeleryTsError(mapped, "CONFIG")) return mapped;
    const within = Number.isFinite(timeoutMs) ? ` within ${timeoutMs} ms` : "";
    return connectionError(
      PKG,
      `Redis at ${this.target} was not reachable${within}${reason}; is the server running and ` +
        "the URL right?",
      { cause: last },
    );
  }

  /**
   * Waits (at most `timeoutMs`) for the connection, then runs `work`; errors mapped. A command
   * that could not even be written (the socket died before ioredis noticed) is tried again within
   * the same deadline: it never reached Redis, so it cannot run twice. One that was written and
   * lost its reply is not: the caller decides (the client's publish retry, a redelivery).
   */
  async run<T>(timeoutMs: number, work: (client: Redis) => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.waitReady(Math.max(0, deadline - Date.now()));
      try {
        return await work(this.client);
      } catch (error) {
        if (!isUnsent(error) || this.#closed || Date.now() >= deadline) throw this.map(error);
        // Give ioredis a moment to see the close and start reconnecting.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Closes a connection we own (gracefully unless forced); leaves the caller's client open. */
  async close(force = false): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#readyCallbacks.clear();
    this.#settleWaiters(closedError(PKG, `Redis ${this.#options.what}`));
    const { client } = this;
    if (this.#options.owned) {
      if (!force && client.status === "ready") {
        await client.quit().catch(() => client.disconnect());
      } else {
        client.disconnect();
      }
    }
    // Our own clients keep their listeners: a closing socket may still report an error, and
    // ioredis writes unhandled ones to the console. The caller's client is left as we found it.
    if (!this.#options.owned) this.#detach();
  }
}

/** A connection of our own beside `main`, for blocking or subscribing: same server, same options. */
export function duplicateClient(main: Redis, role: string): Redis {
  const connectionName = `${main.options.connectionName || "celery-ts"}:${role}`;
  // A consumer's takes go one at a time: written at once, not on the next tick with others.
  const pipelining = role === "consumer" ? { enableAutoPipelining: false } : {};
  return main.duplicate({ ...DUPLICATE_OVERRIDES, ...pipelining, connectionName });
}
