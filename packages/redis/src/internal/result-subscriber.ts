import {
  createResultWaiters,
  decodeStoredResult,
  isReadyState,
  resultTimeoutError,
  type Logger,
  type ResultMeta,
  type WaitOptions,
} from "@celery-ts/core";
import { connectionError } from "@celery-ts/core/driver";
import type { Redis } from "ioredis";
import { PKG } from "./errors.ts";
import { Link } from "./link.ts";

/** Decodes a stored result; a value that is not JSON is a `MALFORMED_MESSAGE` error. */
export function decodeResult(key: string, text: string): ResultMeta {
  return decodeStoredResult(text, `the result at ${key}`, PKG);
}

export interface ResultSubscriberOptions {
  /** A new client for the subscriber connection (a duplicate of the backend's). */
  newClient(): Redis;
  /** Reads keys on the backend's command connection. */
  mget(keys: string[]): Promise<(string | null)[]>;
  target: string;
  logger: Logger;
  /** The backend's `reconnectAttempts` (its duplicate inherits the `retryStrategy`). */
  reconnectAttempts: number;
  /** True once the backend is closed: no more unsubscribes. */
  closed(): boolean;
}

/**
 * Whether the connection negotiated RESP3 (Redis 6+; ioredis falls back to RESP2 on older
 * servers). Read from ioredis's connection state; unknown counts as RESP2.
 */
function speaksResp3(client: Redis): boolean {
  return (
    (client as unknown as { condition?: { protocol?: number } | null }).condition?.protocol === 3
  );
}

/**
 * How long a key no longer waited for stays subscribed: the unsubscribes of that time go in one
 * UNSUBSCRIBE, rather than one command (and one reply to read) per result.
 */
const UNSUBSCRIBE_AFTER_MS = 50;

/**
 * The `waitFor()` side of the Redis backend, as Celery's ResultConsumer: one subscriber
 * connection, opened on the first wait, subscribed to the key of every pending task (Celery
 * publishes each store on the key's own channel); after every (re)connection it subscribes again
 * and reads every pending key, since results stored meanwhile were not heard.
 */
export class ResultSubscriber {
  readonly #options: ResultSubscriberOptions;
  #link: Link | undefined;
  /** Pending waitFor() calls by key: one subscription per task serves them all. */
  readonly #waiters = createResultWaiters({ onIdle: (key) => this.#leave(key) });
  /**
   * Keys no longer waited for, still subscribed: unsubscribed together, a moment later, in one
   * command (a wait for one of them meanwhile keeps its subscription).
   */
  readonly #leaving = new Set<string>();
  /**
   * Keys subscribed on the current connection, by their SUBSCRIBE (settled once Redis confirmed
   * it): only these are unsubscribed; a new connection has none.
   */
  readonly #subscribed = new Map<string, Promise<unknown>>();
  #leaveTimer: NodeJS.Timeout | undefined;

  constructor(options: ResultSubscriberOptions) {
    this.#options = options;
  }

  /** Waits for the ready state of `key` (the result of `taskId`). */
  wait(key: string, taskId: string, options: WaitOptions): Promise<ResultMeta> {
    const link = this.#subscription();
    const waiting = this.#waiters.wait(key, {
      ...options,
      timeoutError: () =>
        link.isReady
          ? resultTimeoutError(PKG, taskId, options.timeout)
          : connectionError(
              PKG,
              `no result for task ${taskId} within ${options.timeout} s: the connection to ` +
                `Redis at ${this.#options.target} is down`,
            ),
    });
    if (!this.#waiters.has(key)) return waiting; // the signal had aborted already
    this.#leaving.delete(key);
    // Subscribe first, then read: a result stored in between is heard, one stored before is read.
    // A key subscribed by an earlier wait (its SUBSCRIBE maybe still in flight) reads once that
    // subscription is confirmed: a read before it could miss a result stored in between.
    const subscribed = this.#subscribed.get(key);
    const subscribeAndRead = link.isReady
      ? subscribed
        ? subscribed.then(() => this.#recheck([key]))
        : this.#subscribeAndRead(link.client, key)
      : // Not connected yet (or reconnecting): the ready handler subscribes and reads.
        link.waitReady(Number.POSITIVE_INFINITY).then(() => this.#recheck([key]));
    subscribeAndRead.catch((error: unknown) => {
      this.#options.logger.debug(
        "redis: could not subscribe to a result yet; waiting for the connection",
        { key, error: String(error) },
      );
    });
    return waiting;
  }

  /** Rejects every pending wait with `error` and closes the connection. */
  async close(error: unknown): Promise<void> {
    this.#waiters.rejectAll(error);
    this.#forgetLeaving();
    this.#subscribed.clear();
    await this.#link?.close();
  }

  /** No one waits for `key` any more: it is unsubscribed with the others that leave meanwhile. */
  #leave(key: string): void {
    // A key never subscribed (a wait aborted at once, or one on a lost connection) has nothing to leave.
    if (this.#options.closed() || !this.#link?.isReady || !this.#subscribed.has(key)) return;
    this.#leaving.add(key);
    this.#leaveTimer ??= setTimeout(() => {
      this.#leaveTimer = undefined;
      const keys = [...this.#leaving];
      this.#leaving.clear();
      const link = this.#link;
      if (keys.length === 0 || this.#options.closed() || !link?.isReady) return;
      for (const key of keys) this.#subscribed.delete(key);
      link.client.unsubscribe(...keys).catch(() => undefined);
    }, UNSUBSCRIBE_AFTER_MS).unref();
  }

  /** The connection's subscriptions are gone (closed, or a new connection): none to leave. */
  #forgetLeaving(): void {
    clearTimeout(this.#leaveTimer);
    this.#leaveTimer = undefined;
    this.#leaving.clear();
  }

  /** Sends SUBSCRIBE for `keys`, recorded as subscribed until unsubscribed or disconnected. */
  #subscribe(keys: string[], send: () => Promise<unknown>): Promise<unknown> {
    const sent = send();
    const confirmed = sent.catch(() => undefined);
    for (const key of keys) this.#subscribed.set(key, confirmed);
    return sent;
  }

  /** Resolves every waiter of `key` with its own copy of the meta, if it is a ready state. */
  #deliver(key: string, text: string): void {
    if (!this.#waiters.has(key)) return;
    let meta: ResultMeta;
    try {
      meta = decodeResult(key, text);
    } catch (error) {
      this.#options.logger.warn("redis: ignored a result that is not JSON", {
        key,
        error: String(error),
      });
      return;
    }
    if (!isReadyState(meta.status)) return;
    // Each waiter gets its own copy: the first the one just read, the others a new one.
    let unused: ResultMeta | undefined = meta;
    this.#waiters.resolve(key, () => {
      const copy = unused ?? decodeResult(key, text);
      unused = undefined;
      return copy;
    });
  }

  /**
   * SUBSCRIBE, then read the key: over RESP3 both in one write on the subscriber connection (a
   * subscribed RESP3 connection may still read keys), else the read on the command connection
   * once the subscription is confirmed.
   */
  async #subscribeAndRead(client: Redis, key: string): Promise<void> {
    if (!speaksResp3(client)) {
      await this.#subscribe([key], () => client.subscribe(key));
      return this.#recheck([key]);
    }
    const replies = (await this.#subscribe([key], () =>
      client.pipeline().subscribe(key).get(key).exec(),
    )) as [Error | null, unknown][] | null;
    const [subscribed, read] = replies ?? [];
    if (!subscribed || subscribed[0]) throw subscribed?.[0] ?? new Error("no reply to SUBSCRIBE");
    if (!read || read[0]) return this.#recheck([key]);
    if (typeof read[1] === "string") this.#deliver(key, read[1]);
  }

  /** Reads the keys that still have waiters; covers results stored while we were not subscribed. */
  async #recheck(subscribed: string[]): Promise<void> {
    // A result published as the subscription began came with its reply: no read for it.
    const keys = subscribed.filter((key) => this.#waiters.has(key));
    if (keys.length === 0) return;
    const values = await this.#options.mget(keys);
    keys.forEach((key, i) => {
      const value = values[i];
      if (value) this.#deliver(key, value);
    });
  }

  #subscription(): Link {
    if (this.#link) return this.#link;
    const { newClient, target, logger, reconnectAttempts } = this.#options;
    const link = new Link(newClient(), {
      role: "results",
      target,
      logger,
      owned: true,
      what: "result backend",
      reconnectAttempts,
      // Out of attempts: the pending waits would never hear their results; they fail now, and
      // the next wait connects again.
      onGiveUp: (error) => {
        if (this.#waiters.keys().length === 0) return;
        logger.warn(`redis result backend: ${error.message}; pending waits for results fail`);
        this.#waiters.rejectAll(error);
      },
    });
    // The connection's subscriptions end with it (not on "ready": ioredis is ready a tick before
    // it says so, and a wait in that tick may have subscribed already).
    link.client.on("close", () => {
      this.#subscribed.clear();
      this.#forgetLeaving();
    });
    link.onReady(() => {
      const keys = this.#waiters.keys().filter((key) => !this.#subscribed.has(key));
      if (keys.length === 0) return;
      this.#subscribe(keys, () => link.client.subscribe(...keys))
        .then(() => this.#recheck(keys))
        .catch((error: unknown) => {
          logger.debug("redis: could not subscribe to pending results; retrying on reconnect", {
            error: String(error),
          });
        });
    });
    link.client.on("message", (channel: string, message: string) =>
      this.#deliver(channel, message),
    );
    this.#link = link;
    return link;
  }
}
