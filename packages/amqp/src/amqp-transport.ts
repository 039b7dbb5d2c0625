import {
  settleBatch,
  silentLogger,
  type Logger,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
  type WireMessage,
} from "@celery-ts/core";
import {
  connectionError,
  createConnectionEvents,
  deliveryLimits,
  durationOption,
  toMs,
  type DeadLetterLimits,
  type DeliveryLimitOptions,
} from "@celery-ts/core/driver";
import { createAmqpBroadcast } from "./fanout.ts";
import {
  allowsGlobalQos,
  createConnectionManager,
  type ConnectionManager,
} from "./internal/connection.ts";
import { runConsumer, type ConsumerContext } from "./internal/consumer.ts";
import type { Session } from "./internal/session.ts";
import {
  keepDeadLetter,
  purgeDeadLetters,
  readDeadLetters,
  replayDeadLetters,
} from "./internal/dead-letters.ts";
import { DeadLetterFailures } from "./internal/dead-letter-failures.ts";
import { Declarations } from "./internal/declarations.ts";
import {
  checkDelayTarget,
  delayEntry,
  delayNames,
  delayRoutingKey,
  type DelayNames,
} from "./internal/delay.ts";
import { closedError, configError, mapAmqpError, PKG } from "./internal/errors.ts";
import { toAmqpMessage } from "./internal/message.ts";
import { resolveConnection, type ConnectionOptions } from "./internal/options.ts";
import { registerInternals } from "./internal/registry.ts";
import {
  publishTarget,
  resolveQueue,
  type QueueSpec,
  type TopologySettings,
} from "./internal/topology.ts";

export type ExchangeType = "direct" | "topic" | "fanout" | "headers";

/** `"quorum"` queues are replicated (RabbitMQ 3.8+); they have no `x-max-priority`. */
export type QueueType = "classic" | "quorum";

/** How one queue is declared and reached, as an entry of Celery's `task_queues` would say. */
export interface AmqpQueueOptions {
  /** The exchange the queue is bound to. @default the queue's name (kombu's) */
  exchange?: string;
  /** The exchange's type. @default "direct" */
  exchangeType?: ExchangeType;
  /**
   * The binding's routing key, also used to publish through a topic or headers exchange (direct
   * queues are published to through the default exchange, as Celery does).
   * @default the queue's name
   */
  routingKey?: string;
  /**
   * Celery's `Broadcast`: publishing goes to a fanout exchange named after the queue, and every
   * consumer gets its own auto-deleted queue `bcast.<uuid>` bound to it, so every worker runs the
   * task.
   * @default false
   */
  broadcast?: boolean;
  /** Classic or quorum. @default the transport's `queueType` */
  type?: QueueType;
  /** `x-max-priority` of this queue; null for none. @default the transport's `maxPriority` */
  maxPriority?: number | null;
  /** More declaration arguments, as Celery's `queue_arguments` (e.g. `x-message-ttl`). @default {} */
  arguments?: Record<string, unknown>;
}

/** Where rejected messages go, with their reason, for `deadLetters()`. */
export interface AmqpDeadLetterOptions {
  /**
   * The exchange rejected messages are published to (declared direct and durable).
   * @default "celery_ts.dead"
   */
  exchange?: string;
  /**
   * The dead letters of queue `q` wait in the queue `q` + this suffix, bound to `exchange` with
   * the routing key `q`.
   * @default ".dead"
   */
  queueSuffix?: string;
  /**
   * Also declare every queue with `x-dead-letter-exchange` (and `x-dead-letter-routing-key` = its
   * name), so that RabbitMQ itself dead-letters what other consumers reject and what expires.
   * Python Celery must then declare its queues with the same `queue_arguments`.
   * @default false
   */
  declareArguments?: boolean;
}

export interface AmqpTransportOptions extends ConnectionOptions, DeliveryLimitOptions {
  /**
   * Queues that are not declared the default way (`Queue(name, Exchange(name), name)`, durable):
   * other exchanges or routing keys, broadcast queues, per-queue types and arguments. Queues not
   * listed are declared the default way on first use, as Celery's `task_create_missing_queues`.
   * @default {}
   */
  queues?: Record<string, AmqpQueueOptions>;
  /**
   * Declares every queue with this `x-max-priority` (Celery's `task_queue_max_priority`), so that
   * priorities 0-9 are served higher first. Python Celery must use the same value: RabbitMQ
   * refuses to declare a queue again with other arguments.
   * @default none, as in Celery: no x-max-priority, and priorities are ignored
   */
  maxPriority?: number;
  /** The type of the queues this transport declares. @default "classic" */
  queueType?: QueueType;
  /**
   * Where rejected messages are kept with their reason (see `deadLetters`, which turns them off
   * and sets their bounds): the consumer publishes a copy to this exchange, which routes it to
   * the queue's dead-letter queue, bounded by RabbitMQ, then acknowledges the message. The
   * queues themselves are declared as kombu does, so Python Celery shares them.
   * @default { exchange: "celery_ts.dead", queueSuffix: ".dead" }
   */
  deadLetter?: AmqpDeadLetterOptions;
  /**
   * `"native"`: a message published with `availableAt` waits on RabbitMQ, in TTL queues that
   * dead-letter into its queue when it is due (no plugin needed; see the README). `"worker"`: it
   * goes to its queue at once and the worker holds it until its `eta`, as Celery does.
   * @default "native"
   */
  delayedDelivery?: "native" | "worker";
  /**
   * The prefix of the delay exchanges and queues (`<prefix>.L00` to `<prefix>.L31` and
   * `<prefix>.delivery`), shared by every celery-ts process on the vhost.
   * @default "celery_ts.delay"
   */
  delayPrefix?: string;
  /**
   * The type of the delay queues. `"quorum"` dead-letters at least once (RabbitMQ 3.10+), so a
   * node crash cannot lose a delayed message between two levels. Changing it needs another
   * `delayPrefix` (RabbitMQ keeps the first declaration).
   * @default "classic"
   */
  delayQueueType?: QueueType;
  /**
   * Limit the prefetch of a `consume()` with one basic.qos for its whole channel (global=true),
   * exact across several queues and changed at once. RabbitMQ deprecated global QoS and 4.3
   * refuses it by default; quorum queues never take it. Without it, each queue's consumer gets
   * the limit, and is made again when the prefetch changes (see the README).
   * @default true on RabbitMQ before 4.3, false on later versions and other servers
   */
  globalQos?: boolean;
  /**
   * Seconds `publish()` waits for RabbitMQ's confirm before it rejects with a retryable
   * `CONNECTION` error.
   * @default 10
   */
  publishTimeout?: number;
  /** Where the transport reports what it recovers from (reconnects). @default silentLogger */
  logger?: Logger;
}

function checkPriority(what: string, value: number | null | undefined, max: number): void {
  if (value === undefined || value === null) return;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw configError(`${what} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
}

/** Rejects with a retryable CONNECTION error if `work` takes longer than `ms` (a hung socket). */
function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(connectionError(PKG, `cannot ${what}: RabbitMQ did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The exchange dead letters go through unless `deadLetter.exchange` names another. */
const DEFAULT_DEAD_LETTER_EXCHANGE = "celery_ts.dead";

/** The topology options, checked at construction: a bad option fails before any I/O. */
function resolveTopology(
  options: AmqpTransportOptions,
  limits: { deadLetters: DeadLetterLimits | undefined },
): TopologySettings {
  const queueType = options.queueType ?? "classic";
  const { maxPriority } = options;
  if (
    maxPriority !== undefined &&
    (!Number.isInteger(maxPriority) || maxPriority < 1 || maxPriority > 255)
  ) {
    throw configError(`maxPriority must be an integer from 1 to 255, got ${String(maxPriority)}`);
  }
  if (maxPriority !== undefined && queueType === "quorum") {
    throw configError(
      'quorum queues have no x-max-priority: leave maxPriority unset with queueType "quorum"',
    );
  }
  const given = options.deadLetter ?? {};
  const deadLetter = limits.deadLetters && {
    exchange: given.exchange ?? DEFAULT_DEAD_LETTER_EXCHANGE,
    queueSuffix: given.queueSuffix ?? ".dead",
    declareArguments: given.declareArguments ?? false,
  };
  if (deadLetter && (deadLetter.exchange === "" || deadLetter.queueSuffix === "")) {
    throw configError("deadLetter.exchange and deadLetter.queueSuffix must not be empty");
  }
  const settings: TopologySettings = {
    queues: options.queues ?? {},
    maxPriority,
    queueType,
    deadLetter,
  };
  for (const name of Object.keys(settings.queues)) {
    checkPriority(`queues["${name}"].maxPriority`, settings.queues[name]?.maxPriority, 255);
    resolveQueue(name, settings);
  }
  return settings;
}

/** The parts of one transport that its methods share. */
interface TransportCore {
  options: AmqpTransportOptions;
  logger: Logger;
  manager: ConnectionManager;
  declarations: Declarations;
  names: DelayNames;
  delayMode: "native" | "worker";
  maxPriority: number | undefined;
  publishTimeoutMs: number;
  /** A larger message is delivered as an error, unread. */
  maxMessageBytes: number;
  resolve(queue: string): QueueSpec;
  ensureOpen(): void;
}

type PublishContext = TransportCore;

/** The message count of a shared queue, purged or not (a broadcast queue is each consumer's own: 0). */
async function countQueue(core: TransportCore, queue: string, purge: boolean): Promise<number> {
  core.ensureOpen();
  const spec = core.resolve(queue);
  if (spec.broadcast) return 0;
  const session = await core.manager.open();
  await core.declarations.queue(session, spec);
  const { messageCount } = await session.run(
    `${purge ? "purge" : "count"} the queue "${queue}"`,
    (channel) => (purge ? channel.purgeQueue(queue) : channel.checkQueue(queue)),
  );
  return messageCount;
}

/** What a `consume()` of this transport needs (see runConsumer). */
function consumerContext(
  core: TransportCore,
  connection: { reconnectInitialDelay: number; reconnectMaxDelay: number },
  consumers: { isClosed(): boolean; stops: Set<() => void> },
): ConsumerContext {
  const { declarations, names, publishTimeoutMs, options } = core;
  const dead = declarations.deadLetters;
  return {
    manager: core.manager,
    logger: core.logger,
    resolve: core.resolve,
    prepare: (session, spec, actualName) => declarations.queue(session, spec, actualName),
    fromDelayChain: (exchange) => names.owns(exchange),
    deadLetter: dead && {
      keep: (session, queue, message, reason) =>
        keepDeadLetter(dead, publishTimeoutMs, { session, queue, message, reason }),
      failures: new DeadLetterFailures({
        logger: core.logger,
        exchange: dead.exchange,
        queueOf: dead.queueOf,
        initial: connection.reconnectInitialDelay,
        max: connection.reconnectMaxDelay,
      }),
    },
    maxMessageBytes: core.maxMessageBytes,
    isClosed: consumers.isClosed,
    register(stop) {
      consumers.stops.add(stop);
      return () => consumers.stops.delete(stop);
    },
    reconnectInitialDelay: connection.reconnectInitialDelay,
    reconnectMaxDelay: connection.reconnectMaxDelay,
    globalQos: (session) => options.globalQos ?? allowsGlobalQos(session.server),
  };
}

/**
 * Checks and encodes a message for publishing as kombu does (errors before any I/O); the returned
 * function declares what it needs, publishes it (through the delay topology when due later) and
 * resolves once RabbitMQ confirms it.
 */
function prepareSend(
  ctx: PublishContext,
  message: WireMessage,
  { queue, priority, availableAt }: PublishOptions,
): (session: Session) => Promise<void> {
  checkPriority("priority", priority, ctx.maxPriority ?? 255);
  const spec = ctx.resolve(queue);
  const wantsDelay =
    ctx.delayMode === "native" && availableAt !== undefined && availableAt > Date.now();
  if (wantsDelay) checkDelayTarget(spec.name);
  const { content, options } = toAmqpMessage(message, {
    ...(priority !== undefined && { priority }),
    dropExpiration: wantsDelay,
  });
  const what = `publish to the queue "${queue}"`;
  const send = async (session: Session): Promise<void> => {
    await ctx.declarations.queue(session, spec);
    let target = publishTarget(spec);
    if (wantsDelay) {
      await ctx.declarations.delayTarget(session, spec);
      // Measured now, after the declarations: the delay starts when the message enters.
      const delayMs = availableAt! - Date.now();
      if (delayMs > 0) {
        target = {
          exchange: delayEntry(ctx.names),
          routingKey: delayRoutingKey(delayMs, spec.name),
        };
      }
    }
    const timeoutMs = ctx.publishTimeoutMs;
    await session.publish({
      ...target,
      content,
      options,
      what,
      timeoutMs,
      mandatory: !spec.broadcast,
    });
  };
  return async (session) => {
    try {
      await withDeadline(send(session), ctx.publishTimeoutMs, what);
    } catch (error) {
      // The queue may have been deleted behind our back: declare it again next time.
      session.forget(JSON.stringify(spec.name));
      throw mapAmqpError(error, what);
    }
  };
}

/**
 * The RabbitMQ broker (AMQP 0-9-1, through amqplib), declaring and publishing as Celery and kombu
 * do, so Python Celery workers and clients share its queues. Publishes are confirmed; consumers
 * get exactly `prefetch` messages, acknowledge after the task, and resume after a reconnect.
 */
export function createAmqpTransport(options: AmqpTransportOptions = {}): Transport {
  const connection = resolveConnection(options);
  const logger = options.logger ?? silentLogger;
  const limits = deliveryLimits(PKG, options);
  const settings = resolveTopology(options, limits);
  const names = delayNames(options.delayPrefix ?? "celery_ts.delay");
  const dead = settings.deadLetter;
  const declarations = new Declarations({
    deadLetter: dead && limits.deadLetters && { ...dead, limits: limits.deadLetters },
    names,
    delayQueueType: options.delayQueueType ?? "classic",
    logger,
  });
  const { add: onConnectionEvent, emit: onEvent } = createConnectionEvents(logger);
  const manager = createConnectionManager({ ...connection, logger, what: "transport", onEvent });
  const stops = new Set<() => void>();
  const specs = new Map<string, QueueSpec>();
  let closed = false;
  const core: TransportCore = {
    options,
    logger,
    manager,
    declarations,
    names,
    delayMode: options.delayedDelivery ?? "native",
    maxPriority: settings.maxPriority,
    publishTimeoutMs: toMs(durationOption(PKG, "publishTimeout", options.publishTimeout, 10)),
    maxMessageBytes: limits.maxMessageBytes,
    resolve(queue) {
      const spec = specs.get(queue) ?? resolveQueue(queue, settings);
      specs.set(queue, spec);
      return spec;
    },
    ensureOpen() {
      if (closed) throw closedError("transport");
    },
  };
  const consumers = consumerContext(core, connection, { isClosed: () => closed, stops });
  const transport: Transport = {
    name: "amqp",
    capabilities: capabilitiesOf(core.delayMode, settings),
    broadcast: () => createAmqpBroadcast(options),
    async connect() {
      core.ensureOpen();
      await manager.open();
    },
    async close({ force = false } = {}) {
      if (closed) return;
      closed = true;
      stops.forEach((stop) => stop());
      stops.clear();
      await manager.close({ force });
    },
    async publish(message, publish) {
      core.ensureOpen();
      const send = prepareSend(core, message, publish);
      await send(await manager.open());
    },
    /** Every message on the confirm channel at once, their confirms awaited together. */
    async publishBatch(batch) {
      core.ensureOpen();
      // Encoding errors first, before anything is sent.
      const sends = batch.map((item) => prepareSend(core, item.message, item.options));
      const session = await manager.open();
      settleBatch(batch, await Promise.allSettled(sends.map((send) => send(session))), PKG);
    },
    consume: (queues, onDelivery, consumeOptions) =>
      runConsumer(consumers, queues, onDelivery, consumeOptions),
    purge: (queue) => countQueue(core, queue, true),
    depth: (queue) => countQueue(core, queue, false),
    onConnectionEvent,
  };
  addDeadLetterMethods(transport, core);
  registerInternals(transport, { manager, publishTimeoutMs: core.publishTimeoutMs });
  return transport;
}

/** `deadLetters()`, `replayDeadLetters()` and `purgeDeadLetters()`, when dead letters are on. */
function addDeadLetterMethods(transport: Transport, core: TransportCore): void {
  const dead = core.declarations.deadLetters;
  if (!dead) return;
  const open = (): Promise<Session> => {
    core.ensureOpen();
    return core.manager.open();
  };
  transport.deadLetters = async (queue, { limit } = {}) =>
    readDeadLetters(dead, await open(), queue, limit);
  transport.replayDeadLetters = async (queue, selection = {}) => {
    const spec = core.resolve(queue);
    const session = await open();
    await core.declarations.queue(session, spec);
    return replayDeadLetters(dead, {
      session,
      queue,
      selection,
      target: publishTarget(spec),
      publishTimeoutMs: core.publishTimeoutMs,
    });
  };
  transport.purgeDeadLetters = async (queue, selection = {}) =>
    purgeDeadLetters(dead, await open(), queue, selection);
}

function capabilitiesOf(
  delayMode: "native" | "worker",
  settings: TopologySettings,
): TransportCapabilities {
  return {
    delayedDelivery: delayMode,
    priority: settings.maxPriority === undefined ? false : "higher-first",
    deadLetter: settings.deadLetter !== undefined,
    redelivery: "on-disconnect",
    redeliveryWindow: 0,
    reportsConsuming: true,
  };
}
