import { CeleryTsError, isCeleryTsError, type ConnectionEvent, type Logger } from "@celery-ts/core";
import { Redis, type RedisOptions } from "ioredis";
import { backoffDelay, closedError, connectionError, toMs } from "@celery-ts/core/driver";
import { configError, isAuthError, mapRedisError, PKG } from "./errors.ts";
import { outageLog, type OutageLog } from "./outage-log.ts";
import { parseRedisUrl, type ParsedRedisUrl } from "./parse-url.ts";

/** How to reach Redis: a URL, ioredis options, or a client the caller owns. */
export type RedisConnection = string | RedisOptions | Redis;

/** Reconnection delays (ms): the kit's backoff from 0.1 s up to 3 s, jittered so a fleet does not stampede. */
export function defaultRetryStrategy(times: number): number {
  return Math.round(toMs(backoffDelay(times, { initial: 0.1, max: 3 })));
}

/**
 * `reconnectAttempts` checked, as `@celery-ts/amqp` checks it: a whole number of 1 or more, or
 * `Infinity` (the default: keep trying).
 */
export function reconnectAttemptsOption(value: number | undefined): number {
  if (value === undefined || value === Infinity) return Infinity;
  if (!Number.isInteger(value) || value < 1) {
    throw configError(
      `reconnectAttempts must be a whole number of 1 or more, or Infinity, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * ioredis's `retryStrategy` for at most `attempts` failed reconnect attempts in a row (ioredis
 * counts them from the last time the connection was ready): then it stops, and the connection ends.
 */
function retryStrategyFor(attempts: number): (times: number) => number | null {
  if (attempts === Infinity) return defaultRetryStrategy;
  return (times) => (times > attempts ? null : defaultRetryStrategy(times));
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

/** ioredis is connecting, or connected: `connect()` would refuse. */
function isUnderWay(status: string): boolean {
  return status === "connecting" || status === "connect" || status === "ready";
}

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
  /** Failed reconnect attempts in a row before a connection we made gives up; Infinity: never. */
  reconnectAttempts: number;
}

/**
 * A client with celery-ts's defaults. Replies are read in ioredis's "legacy" shapes (arrays, not
 * RESP3 maps), so a `replyMapping` other than that is refused rather than misread.
 */
function newClient(options: RedisOptions, reconnectAttempts: number): Redis {
  const { replyMapping, ...rest } = options;
  if (replyMapping !== undefined && replyMapping !== "legacy") {
    throw new CeleryTsError(
      "CONFIG",
      `ioredis's replyMapping "${replyMapping}" is not supported: leave it unset (celery-ts reads ` +
        "the legacy reply shapes)",
      { pkg: PKG },
    );
  }
  const retryStrategy = retryStrategyFor(reconnectAttempts);
  return new Redis<"legacy">({ ...OWNED_DEFAULTS, retryStrategy, ...rest });
}

/**
 * Builds (or adopts) the main client. No I/O: the connection opens on first use.
 * `reconnectAttempts` (the option) wins over the URL's `?reconnect_attempts=`; a client given
 * keeps its own `retryStrategy`.
 */
export function resolveConnection(
  connection: RedisConnection | undefined,
  reconnectAttempts?: number,
): ResolvedConnection {
  if (isRedisClient(connection)) {
    return {
      client: connection,
      owned: false,
      target: describeTarget(connection.options),
      fromUrl: {},
      reconnectAttempts: Infinity,
    };
  }
  if (connection === undefined || typeof connection === "string") {
    const { redis, target, ...fromUrl } = parseRedisUrl(connection ?? "redis://127.0.0.1:6379/0");
    const attempts = reconnectAttemptsOption(reconnectAttempts ?? fromUrl.reconnectAttempts);
    return {
      client: newClient(redis, attempts),
      owned: true,
      target,
      fromUrl,
      reconnectAttempts: attempts,
    };
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
  const attempts = reconnectAttemptsOption(reconnectAttempts);
  return {
    client: newClient(connection, attempts),
    owned: true,
    target: describeTarget(connection),
    fromUrl: {},
    reconnectAttempts: attempts,
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
  /** `reconnectAttempts` of the client (its `retryStrategy` stops after so many). @default Infinity */
  reconnectAttempts?: number;
  /**
   * A consumer's connection: once it gave up reconnecting (`reconnectAttempts`), every wait for it
   * rejects with a `CONNECTION` error that is not retryable, so consuming ends. Other connections
   * try once more each time they are used.
   */
  final?: boolean;
  /**
   * Called when a connection that is not `final` runs out of `reconnectAttempts`, with the
   * CONNECTION error saying so: what waits on it can fail now rather than hang. Its next use
   * connects again.
   */
  onGiveUp?: (error: CeleryTsError) => void;
}

const errorText = (error: unknown): string => String((error as Error)?.message ?? error);

/**
 * One ioredis connection and what we know of its health: waits for it to be ready within a
 * deadline, maps its errors, reports losses and recoveries (logged once per outage for all the
 * connections of a logger to one server: see `outageLog`), and runs callbacks on every
 * (re)connection so that subscriptions and client tracking can be set up again.
 */
export class Link {
  readonly client: Redis;
  readonly target: string;
  readonly #options: LinkOptions;
  readonly #outage: OutageLog;
  #everReady = false;
  #lost = false;
  #closed = false;
  /**
   * Disconnected on purpose (nothing waited for a connection that never came up): the next wait
   * connects again. ioredis leaves a client disconnected while "reconnecting" in that state,
   * without an "end", so this flag, not the status, says that it must be started again.
   */
  #abandoned = false;
  /** The error a final link gave up with: every wait rejects with it. */
  #gaveUp: CeleryTsError | undefined;
  #lastError: unknown;
  readonly #readyCallbacks = new Set<() => void>();
  readonly #waiters = new Set<ReadyWaiter>();
  readonly #detach: () => void;

  constructor(client: Redis, options: LinkOptions) {
    this.client = client;
    this.target = options.target;
    this.#options = options;
    this.#outage = outageLog(options.logger, options.target, options.reconnectAttempts ?? Infinity);
    // A client given to us may be connected already: its "ready" has come and gone.
    this.#everReady = client.status === "ready";
    const { logger, role } = options;
    const onError = (error: unknown): void => {
      this.#lastError = error;
      // Wrong credentials will not get better by waiting: tell every waiter now.
      if (isAuthError(error) && this.#waiters.size > 0) {
        this.#settleWaiters(mapRedisError(error, this.target));
        this.#stopIfAbandoned();
      }
      if (!this.#markLost(error)) {
        logger.debug(`redis: ${role} connection to ${this.target} failed`, {
          error: errorText(error),
        });
      }
    };
    const onClose = (): void => void this.#markLost(undefined);
    const onReconnecting = (delay: unknown): void => {
      if (!this.#closed)
        logger.debug(`redis: reconnecting the ${role} connection in ${String(delay)} ms`);
    };
    const onReady = (): void => {
      if (this.#lost) {
        logger.debug(`redis ${options.what}: reconnected the ${role} connection to ${this.target}`);
        this.#outage.recovered(this);
        options.onEvent?.({ type: "recovered", role });
      }
      this.#lost = false;
      this.#everReady = true;
      this.#settleWaiters();
      this.#readyCallbacks.forEach((callback) => callback());
    };
    const onEnd = (): void => this.#ended();
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

  /** The first sign that a connection which had been up is gone; false when it is not that. */
  #markLost(error: unknown): boolean {
    if (!this.#everReady || this.#lost || this.#closed) return false;
    this.#lost = true;
    const { what, role, logger } = this.#options;
    const text = error === undefined ? undefined : errorText(error);
    logger.debug(`redis ${what}: lost the ${role} connection to ${this.target}`, {
      ...(text !== undefined && { error: text }),
    });
    this.#outage.lost(this, `${what} ${role}`, text);
    this.#options.onEvent?.({ type: "lost", role });
    return true;
  }

  /** ioredis stopped: closed by us, abandoned, or out of reconnect attempts. */
  #ended(): void {
    if (this.#closed) return this.#settleWaiters(closedError(PKG, `Redis ${this.#options.what}`));
    const unreachable = this.#unreachable(Number.NaN);
    const { what, role, logger, final, reconnectAttempts: attempts = Infinity } = this.#options;
    // ioredis counts the failed attempts, and one more when its retryStrategy says stop; not
    // when it was disconnected on purpose.
    const failed = (this.client as unknown as { retryAttempts?: number }).retryAttempts ?? 0;
    if (!this.#options.owned || !(failed > attempts)) return this.#settleWaiters(unreachable);
    // Out of attempts: the outage no longer waits for this connection.
    this.#outage.forget(this);
    const text =
      `gave up reconnecting to Redis at ${this.target} after ${attempts} failed attempts in a ` +
      "row (reconnectAttempts); raise or remove the limit to keep trying";
    const gaveUp = connectionError(PKG, text, { retryable: false, cause: this.#lastError });
    if (final) {
      this.#gaveUp = gaveUp;
      logger.error(`redis ${what}: ${text}`, { connection: role });
    } else {
      logger.debug(`redis ${what}: the ${role} connection stopped reconnecting; next use retries`);
      this.#options.onGiveUp?.(gaveUp);
    }
    this.#settleWaiters(this.#gaveUp ?? unreachable);
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
    if (this.#gaveUp) return Promise.reject(this.#gaveUp);
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
      this.#restart();
    } else if (client.status === "wait" || (this.#abandoned && !isUnderWay(client.status))) {
      this.#restart();
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

  #restart(): void {
    this.#abandoned = false;
    this.client.connect().catch(() => undefined);
  }

  /**
   * A connection that never came up stops retrying once nothing waits for it: a reconnect loop
   * would keep the process alive. The next operation starts it again.
   */
  #stopIfAbandoned(): void {
    if (!this.#everReady && this.#options.owned && !this.#closed && this.#waiters.size === 0) {
      this.#abandoned = true;
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
    this.#outage.forget(this);
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
  // The results connection asks for RESP3: subscribed, it may still read the keys it waits for.
  const protocol = role === "results" ? { protocol: 3 as const } : {};
  return main.duplicate({ ...DUPLICATE_OVERRIDES, ...pipelining, ...protocol, connectionName });
}
