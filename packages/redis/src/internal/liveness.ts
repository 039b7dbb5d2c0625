import { randomUUID } from "node:crypto";
import { isCeleryTsError, type Logger } from "@celery-ts/core";
import type { Redis } from "ioredis";
import type { KeyLayout } from "./keys.ts";
import type { Link } from "./link.ts";
import type { Restorer } from "./restore.ts";
import { FORGET_CONSUMER, runScript } from "./scripts.ts";

export interface LivenessOptions {
  keys: KeyLayout;
  logger: Logger;
  /** How long a consumer counts as alive after its last heartbeat (ms). */
  leaseMs: number;
  /** How often consumers look for dead ones (ms). */
  scanIntervalMs: number;
  /** The main connection: its commands, and how long it has been up. */
  main: Link;
  /** A command on the main connection, bounded and mapped. */
  command<T>(work: (client: Redis) => Promise<T>): Promise<T>;
  restorer: Restorer;
  /** The tags this consumer's kit holds now. */
  outstanding(): ReadonlySet<string>;
}

/**
 * Worker liveness on Redis, beside kombu's layout: each celery-ts consumer (one per transport)
 * has an id, records the tags it takes in its own `held` set (the take script does), and keeps
 * an `alive` key with a short TTL renewed by heartbeats. Any celery-ts consumer that finds a
 * consumer whose `alive` key ran out puts that consumer's unacknowledged messages back at once,
 * rather than after kombu's visibility timeout. Messages without such a record (a Python
 * worker's) are left to the visibility timeout, as before.
 *
 * A slow task is never taken away from a live worker: its heartbeats do not depend on the task.
 * A consumer looks for dead ones only once its own connection has been up for a whole lease,
 * so that after an outage every live consumer has had the time to renew its key first.
 */
export class Liveness {
  readonly id = randomUUID();
  readonly #options: LivenessOptions;
  #beatTimer: NodeJS.Timeout | undefined;
  #scanTimer: NodeJS.Timeout | undefined;
  #upSince: number | undefined;
  #running = false;

  constructor(options: LivenessOptions) {
    this.#options = options;
    options.main.onReady(() => {
      this.#upSince = Date.now();
      // Back after an outage: say so at once, before any other consumer may look.
      if (this.#running) void this.#beat();
    });
  }

  /** Starts heartbeats and looks for dead consumers; idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (this.#options.main.isReady) this.#upSince ??= Date.now();
    void this.#beat();
    this.#scheduleScan();
  }

  /**
   * Stops. Graceful (the broker reachable): what this consumer still holds unsettled (acks that
   * failed during an outage) goes back now, and its records are removed. Forced: nothing is
   * written, as after a crash; its messages come back once its `alive` key runs out.
   */
  async stop(force: boolean): Promise<void> {
    const wasRunning = this.#running;
    this.#running = false;
    clearTimeout(this.#beatTimer);
    clearTimeout(this.#scanTimer);
    if (force || !wasRunning) return;
    const { command, keys } = this.#options;
    try {
      await command(async (client) => {
        await client.del(keys.alive(this.id));
        await this.#restoreDead(client, this.id);
      });
    } catch (error) {
      this.#options.logger.warn(
        "redis: could not put back unsettled messages at close; they come back once this " +
          "consumer's liveness lease runs out",
        { error: String(error) },
      );
    }
  }

  async #beat(): Promise<void> {
    const { command, keys, leaseMs, logger } = this.#options;
    clearTimeout(this.#beatTimer);
    try {
      await command(async (client) => {
        await client
          .multi()
          .set(keys.alive(this.id), "1", "PX", leaseMs)
          .sadd(keys.consumers, this.id)
          .exec();
      });
    } catch (error) {
      // The connection reports losses; the next beat (or the reconnection) tries again.
      logger.debug("redis: could not renew this consumer's liveness", { error: String(error) });
    }
    if (!this.#running) return;
    // Three beats per lease: two may be missed before the lease runs out.
    this.#beatTimer = setTimeout(() => void this.#beat(), leaseMs / 3);
    this.#beatTimer.unref();
  }

  #scheduleScan(): void {
    if (!this.#running) return;
    this.#scanTimer = setTimeout(() => {
      void this.scan()
        .catch((error: unknown) => {
          const log =
            isCeleryTsError(error) && error.retryable
              ? this.#options.logger.debug
              : this.#options.logger.warn;
          log("redis: could not look for dead consumers; retrying", { error: String(error) });
        })
        .finally(() => this.#scheduleScan());
    }, this.#options.scanIntervalMs);
    this.#scanTimer.unref();
  }

  /** Restores the messages of every consumer whose `alive` key ran out. Returns how many. */
  async scan(): Promise<number> {
    const { command, keys, leaseMs } = this.#options;
    return command(async (client) => {
      // Up for less than a lease (checked once connected: the wait may have been a reconnection):
      // a live consumer may not have renewed its key since an outage.
      if (this.#upSince === undefined || Date.now() - this.#upSince < leaseMs) return 0;
      let restored = await this.#restoreUnknown(client);
      const ids = (await client.smembers(keys.consumers)).filter((id) => id !== this.id);
      if (ids.length === 0) return restored;
      const alive = await client.exists(...ids.map((id) => keys.alive(id)));
      if (alive === ids.length) return restored;
      for (const id of ids) {
        if ((await client.exists(keys.alive(id))) === 0) {
          restored += await this.#restoreDead(client, id);
        }
      }
      return restored;
    });
  }

  /**
   * Puts back what this consumer took but never learned of (a take whose reply a dropped
   * connection lost): held by it in Redis, unknown to its kit, and taken over a lease ago.
   */
  async #restoreUnknown(client: Redis): Promise<number> {
    const { keys, restorer, outstanding, leaseMs } = this.#options;
    const known = outstanding();
    const tags = (await client.smembers(keys.held(this.id))).filter((tag) => !known.has(tag));
    if (tags.length === 0) return 0;
    const scores = await client.zmscore(keys.unackedIndex, ...tags);
    const ceiling = (Date.now() - leaseMs) / 1000;
    const stale = tags.filter((_tag, i) => {
      const score = scores[i];
      return score === null || score === undefined || Number(score) < ceiling;
    });
    if (stale.length === 0) return 0;
    const restored = await restorer.restoreTags(client, stale);
    await client.srem(keys.held(this.id), ...stale);
    return restored;
  }

  /** Puts back what the dead consumer `id` held, then forgets it (unless it came back). */
  async #restoreDead(client: Redis, id: string): Promise<number> {
    const { keys, logger, restorer } = this.#options;
    const tags = await client.smembers(keys.held(id));
    const restored = await restorer.restoreTags(client, tags);
    await runScript(client, FORGET_CONSUMER, [keys.alive(id), keys.held(id), keys.consumers], [id]);
    if (restored > 0 && id !== this.id) {
      logger.warn("redis: a consumer stopped renewing its liveness; restored its messages", {
        consumer: id,
        restored,
      });
    }
    return restored;
  }
}
