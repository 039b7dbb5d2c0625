import { randomUUID } from "node:crypto";
import {
  decodeEnvelope,
  encodeEnvelope,
  encodeJson,
  isCeleryTsError,
  silentLogger,
  type CeleryTsError,
  type ConsumeOptions,
  type DeadLetter,
  type Delivery,
  type Logger,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
  type WireMessage,
} from "@celery-ts/core";
import type { Redis } from "ioredis";
import { closedError, configError } from "./internal/errors.ts";
import {
  checkPrioritySteps,
  clampPriority,
  DEFAULT_PRIORITY_STEPS,
  KeyLayout,
  SEP,
} from "./internal/keys.ts";
import { duplicateClient, Link, resolveConnection, type RedisConnection } from "./internal/link.ts";
import { durationOption } from "./internal/options.ts";
import {
  DEAD_LETTER,
  isNoScript,
  RELEASE_LOCK,
  RESTORE,
  runScript,
  TAKE,
} from "./internal/scripts.ts";
import {
  isRedelivered,
  markRedelivered,
  parseEnvelope,
  priorityOf,
} from "./internal/stored-message.ts";
import { createWakeUp, type WakeUp } from "./internal/wake-up.ts";

export interface RedisTransportOptions {
  /**
   * The Redis server: a URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS,
   * `redis+sentinel://host:26379,host2:26379/0?master_name=mymaster`), ioredis options, or an
   * ioredis client. A client given here stays yours: `close()` leaves it open. The transport
   * opens two more connections of its own (duplicates) while it consumes.
   * @default "redis://127.0.0.1:6379/0"
   */
  connection?: RedisConnection;
  /**
   * How long a delivered, unacknowledged message stays reserved before any consumer (of either
   * language) puts it back on its queue: kombu's `visibility_timeout`. This transport renews the
   * reservation of its outstanding messages while it lives, so this bounds how long the messages
   * of a crashed consumer wait, not how long a task may run. Python workers do not renew: with
   * them on the same queues, keep it above your longest task (or eta/countdown wait), as in Celery.
   * The same value must be used by every consumer of the database.
   * @default 3_600_000 (one hour, kombu's default), or the URL's `?visibility_timeout=` in seconds
   */
  visibilityTimeoutMs?: number;
  /**
   * Put before every key this transport uses (queues, `unacked`, bindings, dead letters), as
   * kombu's `global_keyprefix` transport option does. Python peers must use the same prefix.
   * @default "", or the URL's `?global_keyprefix=`
   */
  keyPrefix?: string;
  /**
   * kombu's `priority_steps`: one list per step, a message going to the highest step not above
   * its priority. Python peers must use the same steps.
   * @default [0, 3, 6, 9]
   */
  prioritySteps?: readonly number[];
  /**
   * How often an idle consumer looks for messages without being woken. Consumers are woken at
   * once by Redis (client tracking, Redis 6+), so this is only a safety net; without tracking
   * (older servers, ACLs without CLIENT) they look every 100 ms instead.
   * @default 1_000
   */
  pollIntervalMs?: number;
  /**
   * How long an operation (publish, ack, purge...) waits for a lost connection to come back
   * before it rejects with a retryable `CONNECTION` error. A publish never hangs longer; a
   * consumer waits as long as it takes, reconnecting with backoff.
   * @default 5_000
   */
  offlineTimeoutMs?: number;
  /**
   * The most dead letters kept per queue; older ones are dropped beyond it.
   * @default Infinity (kept until an operator deletes them)
   */
  maxDeadLetters?: number;
  /** Where connection losses, recoveries and restored messages are reported. @default silentLogger */
  logger?: Logger;
}

const CAPABILITIES: TransportCapabilities = {
  delayedDelivery: "worker",
  priority: "lower-first",
  deadLetter: true,
  redelivery: "after-lease",
};

/** How often consumers poll when Redis cannot wake them. */
const FALLBACK_POLL_MS = 100;
/** The most messages one take script moves; a consumer with more room runs it again. */
const MAX_BATCH = 100;
/** How long the restore lock is held at most, if its holder dies (kombu's is 300 s). */
const MUTEX_EXPIRE_MS = 60_000;
/** Expired messages restored per round under the lock. */
const RESTORE_BATCH = 100;

interface Outstanding {
  queue: string;
  raw: string;
  priority: unknown;
  /** Frees the consumer's prefetch slot. */
  release(): void;
}

interface ConsumerLinks {
  take: Link;
  wake: WakeUp;
  subscriber: Link;
}

interface Taken {
  queue: string;
  raw: string;
  tag: string;
}

/**
 * A broker on Redis, laid out as kombu lays it out, so Python Celery workers and producers share
 * its queues. Messages are taken and recorded as unacknowledged in one atomic script.
 */
export function createRedisTransport(options: RedisTransportOptions | string = {}): Transport {
  const opts: RedisTransportOptions =
    typeof options === "string" ? { connection: options } : options;
  const logger = opts.logger ?? silentLogger;
  const resolved = resolveConnection(opts.connection);
  const visibilityMs = durationOption(
    "visibilityTimeoutMs",
    opts.visibilityTimeoutMs ?? resolved.fromUrl.visibilityTimeoutMs,
    3_600_000,
  );
  const pollIntervalMs = durationOption("pollIntervalMs", opts.pollIntervalMs, 1_000);
  const offlineTimeoutMs = durationOption("offlineTimeoutMs", opts.offlineTimeoutMs, 5_000);
  const maxDeadLetters = opts.maxDeadLetters ?? Number.POSITIVE_INFINITY;
  if (!(maxDeadLetters >= 1)) {
    throw configError(`maxDeadLetters must be at least 1, got ${String(opts.maxDeadLetters)}`);
  }
  const keys = new KeyLayout(
    opts.keyPrefix ?? resolved.fromUrl.keyPrefix ?? "",
    checkPrioritySteps(opts.prioritySteps ?? DEFAULT_PRIORITY_STEPS),
  );
  const { target } = resolved;
  const main = new Link(resolved.client, {
    role: "command",
    target,
    logger,
    owned: resolved.owned,
    what: "transport",
  });
  const restoreIntervalMs = Math.max(50, Math.min(10_000, visibilityMs / 4));

  /** This connection's outstanding deliveries, by delivery tag. */
  const outstanding = new Map<string, Outstanding>();
  /** Queues whose kombu binding this connection has declared. */
  const declared = new Set<string>();
  const stopConsumers = new Set<() => Promise<void>>();
  /** Takes under way, of every consume() (one stopped meanwhile included): close() waits for them. */
  const pumps = new Set<Promise<void>>();
  let consumerLinks: ConsumerLinks | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let restoreTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const skippedEntries = new Set<string>();

  const ensureOpen = (): void => {
    if (closed) throw closedError("transport");
  };

  /** A command on the main connection, waiting a bounded time for it; errors mapped. */
  const command = <T>(work: (client: Redis) => Promise<T>): Promise<T> =>
    main.run(offlineTimeoutMs, work);

  const execChecked = async (
    results: [error: Error | null, result: unknown][] | null,
  ): Promise<unknown[]> => {
    if (!results) throw new Error("Connection is closed (transaction aborted)");
    return results.map(([error, result]) => {
      if (error) throw error;
      return result;
    });
  };

  // --- Visibility: renewing our own reservations, restoring everyone's expired ones -----------

  const renew = async (): Promise<void> => {
    renewTimer = undefined;
    if (outstanding.size === 0 || closed) return;
    const now = Date.now() / 1000;
    const tags = [...outstanding.keys()];
    try {
      for (let i = 0; i < tags.length; i += 500) {
        const args = tags.slice(i, i + 500).flatMap((tag) => [now, tag]);
        // XX: only entries still there; an ack or a restore meanwhile is not undone.
        await command((c) => c.zadd(keys.unackedIndex, "XX", ...args));
      }
    } catch (error) {
      logger.warn("redis: could not renew the reservations of outstanding messages; retrying", {
        error: String(error),
      });
    }
    scheduleRenewal();
  };

  // A third of the timeout leaves two more tries before it runs out. Unref'd: outstanding
  // messages alone must not keep a process alive (if it exits, they come back after the timeout).
  const scheduleRenewal = (): void => {
    if (renewTimer || outstanding.size === 0 || closed) return;
    renewTimer = setTimeout(() => void renew(), visibilityMs / 3);
    renewTimer.unref();
  };

  /** The queues a kombu (exchange, routing key) pair routes to, through the binding table. */
  const lookup = async (client: Redis, exchange: string, routingKey: string): Promise<string[]> => {
    if (exchange === "") return [routingKey];
    const members = await client.smembers(keys.binding(exchange));
    const queues = members
      .map((member) => member.split(SEP))
      .filter(([key]) => key === routingKey)
      .map(([, , queue]) => queue ?? "")
      .filter((queue) => queue !== "");
    return queues.length > 0 ? [...new Set(queues)] : [routingKey];
  };

  /** Puts one expired entry back on its queue (compare-and-set against `entry`). */
  const restoreEntry = async (client: Redis, tag: string, entry: string | null): Promise<void> => {
    if (entry === null) {
      // Indexed but not recorded (kombu's shutdown restore leaves these): drop the index entry.
      await runScript(client, RESTORE, [keys.unacked, keys.unackedIndex], [tag, "", "", "front"]);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(entry);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || parsed.length < 3 || typeof parsed[2] !== "string") {
      if (!skippedEntries.has(tag)) {
        skippedEntries.add(tag);
        logger.error(
          "redis: cannot restore an unacked entry that is not [message, exchange, routing_key]",
          {
            tag,
            entry: entry.slice(0, 500),
          },
        );
      }
      return;
    }
    const [payload, exchange, routingKey] = parsed as [unknown, unknown, string];
    const envelope =
      typeof payload === "object" && payload !== null && !Array.isArray(payload)
        ? (payload as Record<string, unknown>)
        : undefined;
    // A malformed message was recorded as a JSON string: it goes back exactly as it was.
    const raw =
      typeof payload === "string" ? payload : markRedelivered(JSON.stringify(payload), envelope);
    const queues = await lookup(client, typeof exchange === "string" ? exchange : "", routingKey);
    const lists = queues.map((queue) => keys.list(queue, priorityOf(envelope)));
    const restored = await runScript(
      client,
      RESTORE,
      [keys.unacked, keys.unackedIndex, ...lists],
      [tag, entry, raw, "front"],
    );
    if (restored === 1) {
      logger.info("redis: restored a message whose visibility timeout ran out", {
        tag,
        queues,
      });
    }
  };

  /**
   * kombu's `restore_visible`: under the `unacked_mutex` lock, every message reserved longer than
   * the visibility timeout goes back to the front of its queue, marked redelivered.
   */
  const restoreVisible = async (): Promise<void> => {
    const token = randomUUID();
    await command(async (client) => {
      const locked = await client.set(keys.unackedMutex, token, "PX", MUTEX_EXPIRE_MS, "NX");
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
          const fresh = tags.filter((tag) => !skippedEntries.has(tag) && !outstanding.has(tag));
          if (fresh.length === 0) break;
          const entries = await client.hmget(keys.unacked, ...fresh);
          for (const [i, tag] of fresh.entries())
            await restoreEntry(client, tag, entries[i] ?? null);
          if (tags.length < RESTORE_BATCH) break;
        }
      } finally {
        await runScript(client, RELEASE_LOCK, [keys.unackedMutex], [token]);
      }
    });
  };

  const scheduleRestore = (): void => {
    if (restoreTimer || closed || stopConsumers.size === 0) return;
    restoreTimer = setTimeout(() => {
      void restoreVisible()
        .catch((error: unknown) => {
          const log = isCeleryTsError(error) && error.retryable ? logger.debug : logger.warn;
          log("redis: could not restore expired unacked messages; retrying", {
            error: String(error),
          });
        })
        .finally(() => {
          restoreTimer = undefined;
          scheduleRestore();
        });
    }, restoreIntervalMs);
    restoreTimer.unref();
  };

  // --- Deliveries ------------------------------------------------------------------------------

  /** Acks or rejects a delivery once; later calls do nothing. */
  const settle = async (
    tag: string,
    work: (client: Redis, entry: Outstanding) => Promise<unknown>,
  ) => {
    ensureOpen();
    const entry = outstanding.get(tag);
    if (!entry) return;
    // Forgotten first: if the command fails, the reservation is no longer renewed and the
    // message comes back after the visibility timeout, rather than staying reserved for good.
    outstanding.delete(tag);
    try {
      await command((client) => work(client, entry));
    } finally {
      // Only now may the consumer take more: a requeued message is back in its place first.
      entry.release();
    }
  };

  const toDelivery = ({ queue, raw, tag }: Taken, release: () => void): Delivery => {
    const envelope = parseEnvelope(raw);
    outstanding.set(tag, { queue, raw, priority: priorityOf(envelope), release });
    scheduleRenewal();
    const actions = {
      queue,
      deliveryTag: tag,
      redelivered: isRedelivered(envelope),
      ack: () =>
        settle(tag, async (client) =>
          execChecked(
            await client.multi().zrem(keys.unackedIndex, tag).hdel(keys.unacked, tag).exec(),
          ),
        ),
      reject: ({ requeue, reason }: { requeue: boolean; reason?: string }) =>
        settle(tag, (client, entry) =>
          requeue
            ? runScript(
                client,
                RESTORE,
                [keys.unacked, keys.unackedIndex, keys.list(entry.queue, entry.priority)],
                [tag, "", markRedelivered(entry.raw, envelope), "front"],
              )
            : runScript(
                client,
                DEAD_LETTER,
                [keys.unacked, keys.unackedIndex, keys.dead(entry.queue)],
                [
                  tag,
                  encodeJson({
                    queue: entry.queue,
                    reason: reason ?? "rejected",
                    rejected_at: Date.now(),
                    raw: entry.raw,
                  }),
                  Number.isFinite(maxDeadLetters) ? maxDeadLetters : 0,
                ],
              ),
        ),
    };
    try {
      return { ...actions, message: decodeEnvelope(raw).message };
    } catch (error) {
      return { ...actions, error: error as CeleryTsError, raw };
    }
  };

  /** Puts taken messages back at the front of their queues, the first taken ending up first. */
  const handBack = async (taken: readonly Taken[]): Promise<void> => {
    for (const { queue, raw, tag } of [...taken].reverse()) {
      const envelope = parseEnvelope(raw);
      await main.run(offlineTimeoutMs, (client) =>
        runScript(
          client,
          RESTORE,
          [keys.unacked, keys.unackedIndex, keys.list(queue, priorityOf(envelope))],
          [tag, "", markRedelivered(raw, envelope), "front"],
        ),
      );
    }
  };

  const handBackLogged = async (taken: readonly Taken[]): Promise<void> => {
    if (taken.length === 0) return;
    await handBack(taken).catch((error: unknown) => {
      logger.warn("redis: could not hand messages back; they return after the visibility timeout", {
        error: String(error),
      });
    });
  };

  const consumerConnections = (): ConsumerLinks => {
    if (consumerLinks) return consumerLinks;
    const take = new Link(duplicateClient(resolved.client, "consumer"), {
      role: "consumer",
      target,
      logger,
      owned: true,
      what: "transport",
    });
    const subscriber = new Link(duplicateClient(resolved.client, "wake-up"), {
      role: "wake-up",
      target,
      logger,
      owned: true,
      what: "transport",
    });
    consumerLinks = { take, subscriber, wake: createWakeUp(take, subscriber, logger) };
    return consumerLinks;
  };

  // --- Consuming -------------------------------------------------------------------------------

  const consume = (
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<void> => {
    if (closed) return Promise.reject(closedError("transport"));
    const unique = [...new Set(queues)];
    if (unique.length === 0) {
      return Promise.reject(configError("consume() needs at least one queue"));
    }
    const { signal } = options;
    const { take, wake } = consumerConnections();
    const lists = keys.steps.flatMap((step) => unique.map((queue) => keys.list(queue, step)));
    const queueJson = unique.map((queue) => encodeJson(queue));
    /** The round-robin order of the queues (1-based indices), as the script rotates it. */
    let cycle = unique.map((_queue, i) => i + 1);

    return new Promise<void>((resolve, reject) => {
      const stopping = new AbortController();
      let count = 0;
      let stopped = false;
      let running: Promise<void> | undefined;
      let again = false;
      let scheduled = false;
      let timer: NodeJS.Timeout | undefined;
      let failures = 0;

      const finish = (error?: unknown): void => {
        if (stopped) return;
        stopped = true;
        stopping.abort();
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener("abort", onAbort);
        stopConsumers.delete(stop);
        if (error === undefined) resolve();
        else reject(error);
      };
      /** Stops, then waits for a take under way (it hands back what it took). */
      const stop = async (): Promise<void> => {
        finish();
        await running;
      };
      const onAbort = (): void => void stop();

      const wakeUp = (): void => {
        if (stopped) return;
        if (running) {
          again = true;
          return;
        }
        if (scheduled) return;
        scheduled = true;
        clearTimeout(timer);
        timer = undefined;
        setImmediate(() => {
          scheduled = false;
          if (stopped || running) return;
          const pumping = pump().finally(() => {
            running = undefined;
            pumps.delete(pumping);
          });
          running = pumping;
          pumps.add(pumping);
          void pumping.then(next);
        });
      };

      const next = (): void => {
        if (stopped) return;
        if (again) {
          again = false;
          wakeUp();
          return;
        }
        if (!timer) {
          timer = setTimeout(wakeUp, wake.tracking ? pollIntervalMs : FALLBACK_POLL_MS);
        }
      };

      const takeBatch = async (room: number): Promise<{ taken: Taken[]; waiting: boolean }> => {
        const tags = Array.from({ length: room }, () => randomUUID());
        const scriptKeys = [keys.unacked, keys.unackedIndex, ...lists];
        const args = [
          Date.now() / 1000,
          room,
          unique.length,
          keys.steps.length,
          ...cycle,
          ...queueJson,
          ...tags,
        ];
        for (let attempt = 1; ; attempt++) {
          const pipeline = take.client.pipeline();
          pipeline.evalsha(TAKE.sha, scriptKeys.length, ...scriptKeys, ...args);
          // Reading the lengths arms client tracking: a push after this wakes us.
          for (const list of lists) pipeline.llen(list);
          const results = await pipeline.exec();
          if (!results) throw new Error("Connection is closed");
          const [first, ...lengths] = results;
          if (first?.[0] && isNoScript(first[0]) && attempt === 1) {
            // A new or restarted server: load the script once, then go on with EVALSHA.
            await take.client.script("LOAD", TAKE.source);
            continue;
          }
          if (first?.[0]) throw first[0];
          const flat = (first?.[1] ?? []) as (number | string)[];
          const taken: Taken[] = [];
          for (let i = 0; i + 1 < flat.length; i += 2) {
            const index = Number(flat[i]);
            cycle = [...cycle.filter((q) => q !== index), index];
            taken.push({
              queue: unique[index - 1] ?? "",
              raw: String(flat[i + 1]),
              tag: tags[i / 2] ?? "",
            });
          }
          const waiting = lengths.some(([error, length]) => !error && Number(length) > 0);
          return { taken, waiting };
        }
      };

      const pump = async (): Promise<void> => {
        const room = Math.min(options.prefetch - count, MAX_BATCH);
        // Full, or nearly: a settled delivery wakes us. Taking only once a quarter of the prefetch
        // is free (or nothing is held) turns one round trip per message into one per batch.
        if (room <= 0 || (count > 0 && room < Math.floor(options.prefetch / 4))) return;
        let batch: { taken: Taken[]; waiting: boolean };
        try {
          await take.waitReady(Number.POSITIVE_INFINITY, stopping.signal);
          batch = await takeBatch(room);
          failures = 0;
        } catch (error) {
          if (stopped) return;
          const mapped = take.map(error);
          if (!isCeleryTsError(mapped) || !mapped.retryable) return finish(mapped);
          // The connection logs the loss; wait a little (it may still be up to the server).
          failures++;
          const delay = Math.min(100 * 2 ** Math.min(failures - 1, 5), 3_000);
          logger.debug("redis: could not take messages; retrying", {
            error: String(mapped),
            delay,
          });
          timer = setTimeout(wakeUp, delay);
          return;
        }
        if (stopped) {
          await handBackLogged(batch.taken);
          return;
        }
        for (const [index, item] of batch.taken.entries()) {
          count++;
          let released = false;
          const delivery = toDelivery(item, () => {
            if (released) return;
            released = true;
            count--;
            wakeUp();
          });
          try {
            onDelivery(delivery);
          } catch (error) {
            // A throwing callback ends this consumer; the messages it never saw go back.
            await handBackLogged(batch.taken.slice(index + 1));
            return finish(error);
          }
        }
        // Messages taken or still waiting: look again at once (prefetch may have been raised).
        if (batch.taken.length > 0 || batch.waiting) again = true;
      };

      const unsubscribe = wake.subscribe(wakeUp);
      stopConsumers.add(stop);
      if (signal.aborted) return finish();
      signal.addEventListener("abort", onAbort, { once: true });
      // Declare the queues as a Celery worker does, so kombu producers can route to them.
      command(async (client) => {
        const transaction = client.multi();
        for (const queue of unique) transaction.sadd(...keys.declaration(queue));
        return execChecked(await transaction.exec());
      }).catch((error: unknown) => {
        logger.debug("redis: could not declare the queue bindings", { error: String(error) });
      });
      scheduleRestore();
      // Never call onDelivery from inside consume().
      wakeUp();
    });
  };

  return {
    name: "redis",
    capabilities: CAPABILITIES,
    async connect() {
      await main.waitReady(offlineTimeoutMs);
    },
    async close({ force = false } = {}) {
      if (closed) return;
      closed = true;
      clearTimeout(renewTimer);
      clearTimeout(restoreTimer);
      renewTimer = restoreTimer = undefined;
      const stops = [...stopConsumers].map((stop) => stop());
      if (!force) {
        // A take under way hands back what it took; a server that stopped answering is not waited for.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([...stops, ...pumps]),
          new Promise((resolve) => (timer = setTimeout(resolve, offlineTimeoutMs))),
        ]);
        clearTimeout(timer);
        // Forced, they stay reserved as after a crash; otherwise other consumers get them now.
        const held = [...outstanding].map(([tag, entry]) => ({
          tag,
          queue: entry.queue,
          raw: entry.raw,
        }));
        outstanding.clear();
        await handBackLogged(held);
      }
      outstanding.clear();
      await Promise.all([consumerLinks?.take.close(force), consumerLinks?.subscriber.close(force)]);
      await main.close(force);
    },
    async publish(
      message: WireMessage,
      { queue, priority, availableAt: _availableAt }: PublishOptions,
    ) {
      ensureOpen();
      // `availableAt` needs nothing here: the message's eta header makes the worker hold it,
      // as a Celery worker does (delayedDelivery: "worker").
      const raw = encodeEnvelope(message, {
        exchange: "",
        routingKey: queue,
        priority: priority ?? 0,
        deliveryTag: randomUUID(),
      });
      const list = keys.list(queue, clampPriority(priority ?? 0));
      // The binding is declared once per queue and connection, as kombu declares a queue once;
      // after that a publish is a single LPUSH.
      if (declared.has(queue)) {
        await command((client) => client.lpush(list, raw));
        return;
      }
      await command(async (client) =>
        execChecked(
          await client
            .multi()
            .sadd(...keys.declaration(queue))
            .lpush(list, raw)
            .exec(),
        ),
      );
      declared.add(queue);
    },
    consume,
    async purge(queue) {
      ensureOpen();
      const lists = keys.lists(queue);
      const results = await command(async (client) => {
        const transaction = client.multi();
        for (const list of lists) transaction.llen(list).del(list);
        return execChecked(await transaction.exec());
      });
      return results
        .filter((_result, i) => i % 2 === 0)
        .reduce<number>((sum, n) => sum + Number(n), 0);
    },
    async deadLetters(queue, { limit } = {}) {
      ensureOpen();
      const bounded = limit !== undefined && Number.isFinite(limit);
      if (bounded && limit < 1) return [];
      const stop = bounded ? Math.floor(limit) - 1 : -1;
      const entries = await command((client) => client.lrange(keys.dead(queue), 0, stop));
      return entries.map((entry): DeadLetter => {
        try {
          const parsed = JSON.parse(entry) as Record<string, unknown>;
          return {
            queue: typeof parsed.queue === "string" ? parsed.queue : queue,
            raw: typeof parsed.raw === "string" ? parsed.raw : entry,
            reason: typeof parsed.reason === "string" ? parsed.reason : "rejected",
            rejectedAt: typeof parsed.rejected_at === "number" ? parsed.rejected_at : 0,
          };
        } catch {
          return { queue, raw: entry, reason: "unknown (not written by celery-ts)", rejectedAt: 0 };
        }
      });
    },
  };
}
