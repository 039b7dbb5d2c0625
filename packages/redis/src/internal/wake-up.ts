import type { Logger } from "@celery-ts/core";
import type { Link } from "./link.ts";

const INVALIDATE_CHANNEL = "__redis__:invalidate";

export interface WakeUp {
  /** Calls `listener` whenever a list the consumer connection read may have changed. */
  subscribe(listener: () => void): () => void;
  /** True while Redis notifies us; false when consumers must poll (tracking unavailable). */
  readonly tracking: boolean;
}

/**
 * Wake-ups without polling, through Redis's client-side caching (Redis 6+): the consumer
 * connection turns on `CLIENT TRACKING`, redirected to a second connection subscribed to
 * `__redis__:invalidate`. After a consumer reads a list's length (LLEN, in its take script), Redis sends that
 * connection one invalidation when anyone changes the list: an LPUSH by any producer, Python
 * included, or a restore. No server configuration is needed (unlike keyspace notifications).
 *
 * Tracking is set up again after either connection reconnects, and consumers are woken then to
 * read (and so re-arm) their lists. If Redis refuses tracking (before 6.0, or an ACL without
 * CLIENT), `tracking` stays false and consumers poll instead.
 */
export function createWakeUp(consumer: Link, subscriber: Link, logger: Logger): WakeUp {
  const listeners = new Set<() => void>();
  let subscriberId: number | undefined;
  let tracking = false;
  let unsupported = false;
  let arming = Promise.resolve();

  const wakeAll = (): void => listeners.forEach((listener) => listener());

  const giveUp = (error: unknown): void => {
    if (unsupported) return;
    unsupported = true;
    tracking = false;
    logger.warn(
      "redis: client tracking is unavailable (Redis 6 or later, with the CLIENT command allowed, " +
        "is needed for instant wake-ups); consumers poll for messages instead",
      { error: String((error as Error)?.message ?? error) },
    );
    void subscriber.close();
    wakeAll();
  };

  /** Whether an error says the server will never do tracking, rather than a lost connection. */
  const isRefusal = (error: unknown): boolean => {
    const message = String((error as Error)?.message ?? "");
    return /^(ERR|NOPERM)/.test(message) && !/LOADING|BUSY/.test(message);
  };

  const arm = async (): Promise<void> => {
    if (unsupported || consumer.closed || subscriberId === undefined) return;
    if (!consumer.isReady) return;
    try {
      // OFF first: a connection still tracking for an old subscriber keeps its old redirect.
      await consumer.client.client("TRACKING", "OFF");
      // NOLOOP: the consumer's own takes (RPOP) do not wake it; only others' pushes do.
      const redirect = String(subscriberId);
      await consumer.client.client("TRACKING", "ON", "REDIRECT", redirect, "NOLOOP");
      tracking = true;
    } catch (error) {
      tracking = false;
      if (isRefusal(error)) return giveUp(error);
      logger.debug("redis: could not turn on client tracking yet; retrying on reconnect", {
        error: String((error as Error)?.message ?? error),
      });
    }
    // Tracking covers only what is read from now on: every consumer reads its lists again.
    wakeAll();
  };

  const queueArm = (): void => {
    arming = arming.then(arm, arm);
  };

  subscriber.onReady(() => {
    tracking = false;
    subscriberId = undefined;
    arming = arming
      .then(async () => {
        if (unsupported || subscriber.closed) return;
        subscriberId = Number(await subscriber.client.client("ID"));
        await subscriber.client.subscribe(INVALIDATE_CHANNEL);
      })
      .catch((error: unknown) => {
        subscriberId = undefined;
        if (isRefusal(error)) giveUp(error);
      });
    queueArm();
  });
  consumer.onReady(() => {
    tracking = false;
    queueArm();
  });
  subscriber.client.on("message", (channel: string) => {
    if (channel === INVALIDATE_CHANNEL) wakeAll();
  });
  // A subscriber that goes away stops the notifications until it is back: poll meanwhile.
  subscriber.client.on("close", () => {
    tracking = false;
  });
  subscriber.waitReady(Number.POSITIVE_INFINITY).catch(() => undefined);

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get tracking() {
      return tracking && !unsupported;
    },
  };
}
