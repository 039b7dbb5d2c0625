import {
  silentLogger,
  type Logger,
  type Transport,
  type TransportCapabilities,
} from "@celery-ts/core";
import {
  createConnectionEvents,
  createConsumerKit,
  deliveryLimits,
  durationOption,
  toMs,
  type ConsumerKit,
  type DeliveryLimitOptions,
} from "@celery-ts/core/driver";
import type { Redis } from "ioredis";
import { createRedisBroadcast } from "./fanout.ts";
import { PKG } from "./internal/errors.ts";
import { checkPrioritySteps, DEFAULT_PRIORITY_STEPS, KeyLayout } from "./internal/keys.ts";
import { duplicateClient, Link, resolveConnection, type RedisConnection } from "./internal/link.ts";
import { Liveness } from "./internal/liveness.ts";
import { serverOf } from "./internal/prepared-store.ts";
import { createQueueCommands } from "./internal/queue-commands.ts";
import { execChecked, redisWrites } from "./internal/redis-primitives.ts";
import { Restorer } from "./internal/restore.ts";
import { createTakeSource, type Held } from "./internal/take-source.ts";
import { createWakeUp, type WakeUp } from "./internal/wake-up.ts";

export interface RedisTransportOptions extends DeliveryLimitOptions {
  /**
   * The Redis server: a URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS,
   * `redis+sentinel://host:26379,host2:26379/0?master_name=mymaster`), ioredis options, or an
   * ioredis client. A client given here stays yours: `close()` leaves it open. The transport
   * opens two more connections of its own (duplicates) while it consumes.
   * @default "redis://127.0.0.1:6379/0"
   */
  connection?: RedisConnection;
  /**
   * Seconds a delivered, unacknowledged message stays reserved before any consumer (of either
   * language) puts it back on its queue: kombu's `visibility_timeout`. This transport renews the
   * reservation of its outstanding messages while it lives. The messages of a celery-ts consumer
   * that dies come back sooner, after `livenessTimeout`; this timeout is for the messages of
   * Python workers, which do not renew: with them on the same queues, keep it above your longest
   * task (or eta/countdown wait), as in Celery. The same value must be used by every consumer of
   * the database.
   * @default 3600 (one hour, kombu's default), or the URL's `?visibility_timeout=`
   */
  visibilityTimeout?: number;
  /**
   * Seconds after its last heartbeat that a celery-ts consumer counts as dead: any other
   * celery-ts consumer then puts its unacknowledged messages back on their queues. Heartbeats
   * come three times per timeout from the process's event loop, whatever its tasks do, so a slow
   * task is not run twice; code that blocks the event loop for longer than this is (raise it, or
   * run such tasks in more processes). Python workers' messages are not affected.
   * @default 6
   */
  livenessTimeout?: number;
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
   * Seconds between looks for messages by an idle consumer that was not woken. Consumers are
   * woken at once by Redis (client tracking, Redis 6+), so this is only a safety net; without
   * tracking (older servers, ACLs without CLIENT) they look every 0.1 s instead.
   * @default 1
   */
  pollInterval?: number;
  /**
   * Seconds an operation (publish, ack, purge...) waits for a lost connection to come back
   * before it rejects with a retryable `CONNECTION` error. A publish never hangs longer; a
   * consumer waits as long as it takes, reconnecting with backoff. Also how long a graceful
   * `close()` waits for takes and acks under way.
   * @default 5
   */
  offlineTimeout?: number;
  /**
   * How many reconnect attempts in a row (with backoff, 0.1 s up to 3 s) a lost connection may
   * fail before it gives up: consuming then ends with a `CONNECTION` error that says so (a worker
   * stops). A publish or an acknowledgement after that tries once more. The same option as
   * `@celery-ts/amqp`'s. Applies to the connections celery-ts makes (not to a client given as
   * `connection`, which keeps its own `retryStrategy`).
   * @default Infinity (keep trying however long Redis is away), or the URL's `?reconnect_attempts=`
   */
  reconnectAttempts?: number;
  /** Where connection losses, recoveries and restored messages are reported. @default silentLogger */
  logger?: Logger;
}

/** The dead-letter and size options given, without the keys left undefined. */
function pickLimits(opts: DeliveryLimitOptions): DeliveryLimitOptions {
  return {
    ...(opts.deadLetters !== undefined && { deadLetters: opts.deadLetters }),
    ...(opts.maxMessageBytes !== undefined && { maxMessageBytes: opts.maxMessageBytes }),
  };
}

/** Seconds between polls when Redis cannot wake consumers. */
const FALLBACK_POLL_INTERVAL = 0.1;
/** Seconds between looks for dead consumers (liveness). */
const LIVENESS_SCAN_INTERVAL = 1;
/** The most messages one take script moves; a consumer with more room runs it again. */
const MAX_BATCH = 100;

interface ConsumerLinks {
  take: Link;
  wake: WakeUp;
  subscriber: Link;
}

function resolveOptions(options: RedisTransportOptions | string) {
  const opts: RedisTransportOptions =
    typeof options === "string" ? { connection: options } : options;
  const resolved = resolveConnection(opts.connection, opts.reconnectAttempts);
  const visibilityTimeout = durationOption(
    PKG,
    "visibilityTimeout",
    opts.visibilityTimeout ?? resolved.fromUrl.visibilityTimeout,
    3600,
  );
  const logger = opts.logger ?? silentLogger;
  return {
    /** Losses and recoveries of every connection of this transport, for `onConnectionEvent`. */
    connectionEvents: createConnectionEvents(logger),
    resolved,
    logger,
    visibilityTimeout,
    pollInterval: durationOption(PKG, "pollInterval", opts.pollInterval, 1),
    livenessTimeout: durationOption(PKG, "livenessTimeout", opts.livenessTimeout, 6, { min: 0.1 }),
    offlineTimeout: durationOption(PKG, "offlineTimeout", opts.offlineTimeout, 5),
    ...deliveryLimits(PKG, { ...resolved.fromUrl.limits, ...pickLimits(opts) }),
    keys: new KeyLayout(
      opts.keyPrefix ?? resolved.fromUrl.keyPrefix ?? "",
      checkPrioritySteps(opts.prioritySteps ?? DEFAULT_PRIORITY_STEPS),
    ),
    // Restored by the first consumer to look after the timeout: one restore round later.
    restoreIntervalMs: Math.max(50, Math.min(10_000, toMs(visibilityTimeout) / 4)),
  };
}

/** kombu's restore of expired reservations, and the liveness of celery-ts consumers. */
function createRecovery(
  o: ReturnType<typeof resolveOptions>,
  main: Link,
  command: <T>(work: (client: Redis) => Promise<T>) => Promise<T>,
  held: () => ReadonlySet<string>,
  consuming: () => boolean,
): { restorer: Restorer; liveness: Liveness } {
  const { keys, logger } = o;
  const visibilityMs = toMs(o.visibilityTimeout);
  const intervalMs = o.restoreIntervalMs;
  const restorer = new Restorer({
    keys,
    logger,
    visibilityMs,
    intervalMs,
    command,
    held,
    consuming,
  });
  const liveness = new Liveness({
    keys,
    logger,
    leaseMs: toMs(o.livenessTimeout),
    scanIntervalMs: toMs(LIVENESS_SCAN_INTERVAL),
    main,
    command,
    restorer,
    outstanding: held,
  });
  return { restorer, liveness };
}

/** One of a consumer's own connections, a duplicate of the main one. */
function consumerLink(o: ReturnType<typeof resolveOptions>, role: "consumer" | "wake-up"): Link {
  const { resolved } = o;
  return new Link(duplicateClient(resolved.client, role), {
    role,
    target: resolved.target,
    logger: o.logger,
    owned: true,
    what: "transport",
    onEvent: o.connectionEvents.emit,
    reconnectAttempts: resolved.reconnectAttempts,
    // Out of reconnect attempts, the takes fail for good: consume() ends.
    final: role === "consumer",
  });
}

/** The consumer's own connections: takes, and wake-ups through client tracking. */
function openConsumerLinks(o: ReturnType<typeof resolveOptions>): ConsumerLinks {
  const take = consumerLink(o, "consumer");
  const subscriber = consumerLink(o, "wake-up");
  return { take, subscriber, wake: createWakeUp(take, subscriber, o.logger) };
}

/**
 * The consuming half: the kit on Redis primitives, two connections of its own (takes, and
 * wake-ups through client tracking), kombu's restore of expired reservations, and the liveness
 * of celery-ts consumers.
 */
function createRedisConsumer(
  o: ReturnType<typeof resolveOptions>,
  main: Link,
  command: <T>(work: (client: Redis) => Promise<T>) => Promise<T>,
) {
  const { keys, logger, resolved } = o;
  const server = serverOf(resolved.client);
  let consumerLinks: ConsumerLinks | undefined;
  let consuming = 0;
  const consumerConnections = (): ConsumerLinks => (consumerLinks ??= openConsumerLinks(o));
  const held = () => new Set(kit.outstanding().map((handle) => handle.tag));
  const { restorer, liveness } = createRecovery(o, main, command, held, () => consuming > 0);
  const consumer = { id: liveness.id, leaseMs: Math.ceil(toMs(o.livenessTimeout)) };
  const open = (queues: readonly string[]) => {
    const { take, wake } = consumerConnections();
    consuming++;
    declareBindings(o, command, queues);
    restorer.start();
    liveness.start();
    return createTakeSource({
      queues,
      keys,
      take,
      wake,
      pollInterval: o.pollInterval,
      fallbackPollInterval: FALLBACK_POLL_INTERVAL,
      onClose: () => void consuming--,
      consumer,
      server,
      offlineTimeoutMs: toMs(o.offlineTimeout),
      maxMessageBytes: o.maxMessageBytes,
      deadLetters: o.deadLetters,
      onRefused: (reason) =>
        logger.error(`${PKG}: refused a message over the size limit`, { reason }),
    });
  };
  const kit: ConsumerKit<Held> = createConsumerKit<Held>({
    pkg: PKG,
    what: "Redis transport",
    logger,
    visibilityTimeout: o.visibilityTimeout,
    pollInterval: o.pollInterval,
    maxBatch: MAX_BATCH,
    batchWhenBusy: true,
    backoff: { initial: 0.1, max: 3 },
    // The connection logs the loss and the recovery.
    retryLogLevel: "debug",
    closeTimeout: o.offlineTimeout,
    maxMessageBytes: o.maxMessageBytes,
    primitives: {
      ...redisWrites({
        keys,
        command,
        deadLetters: o.deadLetters,
        held: keys.held(liveness.id),
        server,
      }),
      open,
    },
  });
  return {
    kit,
    async close(force: boolean) {
      restorer.stop();
      await kit.close({ force });
      await liveness.stop(force);
      await Promise.all([consumerLinks?.take.close(force), consumerLinks?.subscriber.close(force)]);
    },
  };
}

/** Declares the queues as a Celery worker does, so kombu producers can route to them. */
function declareBindings(
  o: ReturnType<typeof resolveOptions>,
  command: <T>(work: (client: Redis) => Promise<T>) => Promise<T>,
  queues: readonly string[],
): void {
  command(async (client) => {
    const transaction = client.multi();
    for (const queue of queues) transaction.sadd(...o.keys.declaration(queue));
    return execChecked(await transaction.exec());
  }).catch((error: unknown) => {
    o.logger.debug("redis: could not declare the queue bindings", { error: String(error) });
  });
}

/** The `connection` the transport was given, for the broadcast it opens beside it. */
function connectionOf(options: RedisTransportOptions | string): { connection?: RedisConnection } {
  if (typeof options === "string") return { connection: options };
  return options.connection === undefined ? {} : { connection: options.connection };
}

/**
 * A broker on Redis, laid out as kombu lays it out, so Python Celery workers and producers share
 * its queues. Messages are taken and recorded as unacknowledged in one atomic script; the
 * consuming half is the driver kit's.
 */
export function createRedisTransport(options: RedisTransportOptions | string = {}): Transport {
  const o = resolveOptions(options);
  const { keys, logger, resolved } = o;
  const { target } = resolved;
  const offlineTimeoutMs = toMs(o.offlineTimeout);
  const capabilities: TransportCapabilities = {
    delayedDelivery: "worker",
    priority: "lower-first",
    deadLetter: o.deadLetters !== undefined,
    redelivery: "after-lease",
    // A celery-ts consumer's messages: its liveness runs out, and another looks within a scan.
    redeliveryWindow: Math.min(
      o.visibilityTimeout + o.restoreIntervalMs / 1000,
      o.livenessTimeout + 2 * LIVENESS_SCAN_INTERVAL,
    ),
    reportsConsuming: true,
  };
  const main = new Link(resolved.client, {
    role: "command",
    target,
    logger,
    owned: resolved.owned,
    what: "transport",
    onEvent: o.connectionEvents.emit,
    reconnectAttempts: resolved.reconnectAttempts,
  });
  /** A command on the main connection, waiting a bounded time for it; errors mapped. */
  const command = <T>(work: (client: Redis) => Promise<T>): Promise<T> =>
    main.run(offlineTimeoutMs, work);
  const consumer = createRedisConsumer(o, main, command);
  const { kit } = consumer;
  const commands = createQueueCommands({
    keys,
    target,
    command,
    mapError: (error) => main.map(error),
    ensureOpen: kit.ensureOpen,
    deadLetters: o.deadLetters !== undefined,
    logger,
  });

  return {
    name: "redis",
    capabilities,
    broadcast: () =>
      createRedisBroadcast({ ...connectionOf(options), keyPrefix: keys.prefix, logger }),
    async connect() {
      await main.waitReady(offlineTimeoutMs);
    },
    async close({ force = false } = {}) {
      if (kit.closed) return;
      // Forced, the messages stay reserved as after a crash; otherwise other consumers get them now.
      await consumer.close(force);
      await main.close(force);
    },
    consume: kit.consume,
    onConnectionEvent: o.connectionEvents.add,
    ...commands,
  };
}
