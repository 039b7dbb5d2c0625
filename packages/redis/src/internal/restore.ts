import { randomUUID } from "node:crypto";
import { isCeleryTsError, type Logger } from "@celery-ts/core";
import type { Redis } from "ioredis";
import { SEP, type KeyLayout } from "./keys.ts";
import { RELEASE_LOCK, RESTORE, runScript } from "./scripts.ts";
import { markRedelivered, priorityOf } from "./stored-message.ts";

/**
 * How long the restore lock (`unacked_mutex`) outlives a holder that died without releasing it.
 * kombu takes the same key with SET NX EX `unacked_mutex_expire` (300 s) and skips the round
 * when it is held; we take it the same way but for at most the visibility timeout (and 300 s):
 * a holder dies no later than its last lease renewal expires, so the lock is gone by the time
 * that holder's messages are due, and they come back within `redeliveryWindow`. A lock that
 * expires mid-round is harmless: every restore is a compare-and-set on the unacked entry.
 */
export function mutexExpireMs(visibilityMs: number): number {
  return Math.max(1, Math.min(300_000, Math.ceil(visibilityMs)));
}
/** Expired messages restored per round under the lock. */
const RESTORE_BATCH = 100;

export interface RestorerOptions {
  keys: KeyLayout;
  logger: Logger;
  visibilityMs: number;
  /** How often consumers look for expired reservations. */
  intervalMs: number;
  /** A command on the main connection, bounded and mapped. */
  command<T>(work: (client: Redis) => Promise<T>): Promise<T>;
  /** The tags this connection holds (never restored by it: it renews them). */
  held(): ReadonlySet<string>;
  /** Whether any consumer of this connection is running: restores run only then. */
  consuming(): boolean;
}

/** The queues a kombu (exchange, routing key) pair routes to, through the binding table. */
async function lookup(
  client: Redis,
  keys: KeyLayout,
  exchange: string,
  routingKey: string,
): Promise<string[]> {
  if (exchange === "") return [routingKey];
  const members = await client.smembers(keys.binding(exchange));
  const queues = members
    .map((member) => member.split(SEP))
    .filter(([key]) => key === routingKey)
    .map(([, , queue]) => queue ?? "")
    .filter((queue) => queue !== "");
  return queues.length > 0 ? [...new Set(queues)] : [routingKey];
}

/** An unacked entry as kombu records it: `[message, exchange, routing_key]`. */
function parseEntry(entry: string): [unknown, unknown, string] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length < 3 || typeof parsed[2] !== "string")
    return undefined;
  return parsed as [unknown, unknown, string];
}

/**
 * kombu's `restore_visible`, run by every consumer in turn: under the `unacked_mutex` lock, every
 * message reserved longer than the visibility timeout goes back to the front of its queue,
 * marked redelivered. Python consumers do the same on the same keys.
 */
export class Restorer {
  readonly #options: RestorerOptions;
  /** Entries that cannot be restored (not kombu's layout): logged once, then left alone. */
  readonly #skipped = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: RestorerOptions) {
    this.#options = options;
  }

  /** Runs a restore round every interval until `stop()`; idempotent. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.restoreVisible()
        .catch((error: unknown) => {
          const { logger } = this.#options;
          const log = isCeleryTsError(error) && error.retryable ? logger.debug : logger.warn;
          log("redis: could not restore expired unacked messages; retrying", {
            error: String(error),
          });
        })
        .finally(() => {
          this.#timer = undefined;
          if (this.#options.consuming()) this.start();
        });
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async restoreVisible(): Promise<void> {
    const { command, keys, visibilityMs, held } = this.#options;
    const token = randomUUID();
    await command(async (client) => {
      const locked = await client.set(
        keys.unackedMutex,
        token,
        "PX",
        mutexExpireMs(visibilityMs),
        "NX",
      );
      // Another consumer (of either language) is restoring; or we are, after a retried write.
      if (locked !== "OK" && (await client.get(keys.unackedMutex)) !== token) return;
      try {
        for (let round = 0; round < 10; round++) {
          const ceiling = (Date.now() - visibilityMs) / 1000;
          const tags = await client.zrangebyscore(
            keys.unackedIndex,
            "-inf",
            ceiling,
            "LIMIT",
            0,
            RESTORE_BATCH,
          );
          const ours = held();
          const fresh = tags.filter((tag) => !this.#skipped.has(tag) && !ours.has(tag));
          if (fresh.length === 0) break;
          await this.restoreTags(client, fresh);
          if (tags.length < RESTORE_BATCH) break;
        }
      } finally {
        await runScript(client, RELEASE_LOCK, [keys.unackedMutex], [token]);
      }
    });
  }

  /**
   * Puts these unacked messages back on their queues, each only if it is still unacked (a
   * compare-and-set on its entry): also used for the messages of a consumer found dead.
   * Returns how many went back.
   */
  async restoreTags(client: Redis, tags: readonly string[]): Promise<number> {
    let restored = 0;
    for (let i = 0; i < tags.length; i += RESTORE_BATCH) {
      const batch = tags.slice(i, i + RESTORE_BATCH);
      const entries = await client.hmget(this.#options.keys.unacked, ...batch);
      for (const [j, tag] of batch.entries()) {
        if (await this.#restoreEntry(client, tag, entries[j] ?? null)) restored++;
      }
    }
    return restored;
  }

  /** Puts one expired entry back on its queue (compare-and-set against `entry`). */
  async #restoreEntry(client: Redis, tag: string, entry: string | null): Promise<boolean> {
    const { keys, logger } = this.#options;
    if (entry === null) {
      // Indexed but not recorded (kombu's shutdown restore leaves these): drop the index entry.
      await runScript(client, RESTORE, [keys.unacked, keys.unackedIndex], [tag, "", "", "front"]);
      return false;
    }
    const parsed = parseEntry(entry);
    if (!parsed) {
      if (!this.#skipped.has(tag)) {
        this.#skipped.add(tag);
        logger.error(
          "redis: cannot restore an unacked entry that is not [message, exchange, routing_key]",
          { tag, entry: entry.slice(0, 500) },
        );
      }
      return false;
    }
    const [payload, exchange, routingKey] = parsed;
    const envelope =
      typeof payload === "object" && payload !== null && !Array.isArray(payload)
        ? (payload as Record<string, unknown>)
        : undefined;
    // A malformed message was recorded as a JSON string: it goes back exactly as it was.
    const raw =
      typeof payload === "string" ? payload : markRedelivered(JSON.stringify(payload), envelope);
    const queues = await lookup(
      client,
      keys,
      typeof exchange === "string" ? exchange : "",
      routingKey,
    );
    const lists = queues.map((queue) => keys.list(queue, priorityOf(envelope)));
    const restored = await runScript(
      client,
      RESTORE,
      [keys.unacked, keys.unackedIndex, ...lists],
      [tag, entry, raw, "front"],
    );
    if (restored === 1) {
      logger.info("redis: restored an unacknowledged message", { tag, queues });
    }
    return restored === 1;
  }
}
