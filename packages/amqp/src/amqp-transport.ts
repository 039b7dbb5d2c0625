import {
  silentLogger,
  type ConsumeOptions,
  type DeadLetter,
  type Delivery,
  type Logger,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
  type WireMessage,
} from "@celery-ts/core";
import type { GetMessage, Message, Options } from "amqplib";
import { allowsGlobalQos, createConnectionManager, type Session } from "./internal/connection.ts";
import { runConsumer } from "./internal/consumer.ts";
import {
  bindDelayExchangeTarget,
  bindDelayTarget,
  checkDelayTarget,
  declareDelayTopology,
  delayEntry,
  delayNames,
  delayRoutingKey,
} from "./internal/delay.ts";
import { closedError, configError, connectionError, mapAmqpError } from "./internal/errors.ts";
import { decodeFieldTable, encodeFieldTable } from "./internal/field-table.ts";
import { rawText, toAmqpMessage } from "./internal/message.ts";
import { durationOption, resolveConnection, type ConnectionOptions } from "./internal/options.ts";
import { registerInternals } from "./internal/registry.ts";
import {
  declarationKey,
  declareDeadLetterQueue,
  declareExchange,
  declareQueue,
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
  /** The exchange rejected messages are published to (declared direct and durable). */
  exchange: string;
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

export interface AmqpTransportOptions extends ConnectionOptions {
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
   * Keep rejected messages with their reason in a dead-letter queue per queue, read back by
   * `deadLetters()`.
   * @default none: a message rejected without requeue is dropped, as RabbitMQ does
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
   * How long `publish()` waits for RabbitMQ's confirm before it rejects with a retryable
   * `CONNECTION` error.
   * @default 10_000
   */
  publishTimeoutMs?: number;
  /** Where the transport reports what it recovers from (reconnects). @default silentLogger */
  logger?: Logger;
}

const DEAD_REASON = "x-celery-ts-reason";
const DEAD_QUEUE = "x-celery-ts-queue";
const DEAD_AT = "x-celery-ts-rejected-at";

function checkPriority(what: string, value: number | null | undefined, max: number): void {
  if (value === undefined || value === null) return;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw configError(`${what} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
}

/** The text of a stored message: UTF-8 when it is, otherwise one character per byte. */
function storedText(message: Message): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(message.content);
  } catch {
    return rawText(message.content);
  }
}

function deadLetterOf(message: GetMessage, queue: string): DeadLetter {
  const headers = decodeFieldTable(message.properties.headers);
  const death = Array.isArray(headers["x-death"])
    ? (headers["x-death"][0] as Record<string, unknown> | undefined)
    : undefined;
  const at = headers[DEAD_AT] ?? death?.time;
  return {
    queue: typeof headers[DEAD_QUEUE] === "string" ? headers[DEAD_QUEUE] : queue,
    raw: storedText(message),
    reason:
      typeof headers[DEAD_REASON] === "string"
        ? headers[DEAD_REASON]
        : typeof death?.reason === "string"
          ? death.reason
          : "rejected",
    rejectedAt: at instanceof Date ? at.getTime() : typeof at === "number" ? at : 0,
  };
}

/** Rejects with a retryable CONNECTION error if `work` takes longer than `ms` (a hung socket). */
function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(connectionError(`cannot ${what}: RabbitMQ did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** A message's properties again, to publish a copy of it (a dead letter). */
function copyProperties(message: Message, headers: Record<string, unknown>): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = { headers: encodeFieldTable(headers), deliveryMode: 2 };
  if (typeof p.contentType === "string") options.contentType = p.contentType;
  if (typeof p.contentEncoding === "string") options.contentEncoding = p.contentEncoding;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.priority !== undefined) options.priority = p.priority;
  if (p.messageId !== undefined) options.messageId = p.messageId;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp;
  if (p.type !== undefined) options.type = p.type;
  if (p.appId !== undefined) options.appId = p.appId;
  return options;
}

/**
 * The RabbitMQ broker (AMQP 0-9-1, through amqplib), declaring and publishing as Celery and kombu
 * do, so Python Celery workers and clients share its queues. Publishes are confirmed; consumers
 * get exactly `prefetch` messages, acknowledge after the task, and resume after a reconnect.
 */
export function createAmqpTransport(options: AmqpTransportOptions = {}): Transport {
  const connection = resolveConnection(options);
  const logger = options.logger ?? silentLogger;
  const publishTimeoutMs = durationOption("publishTimeoutMs", options.publishTimeoutMs, 10_000);
  const queueType = options.queueType ?? "classic";
  const maxPriority = options.maxPriority;
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
  const deadLetter = options.deadLetter && {
    exchange: options.deadLetter.exchange,
    queueSuffix: options.deadLetter.queueSuffix ?? ".dead",
    declareArguments: options.deadLetter.declareArguments ?? false,
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
  // Validate the listed queues now, so a bad option fails at construction.
  for (const name of Object.keys(settings.queues)) {
    checkPriority(`queues["${name}"].maxPriority`, settings.queues[name]?.maxPriority, 255);
    resolveQueue(name, settings);
  }
  const delayMode = options.delayedDelivery ?? "native";
  const names = delayNames(options.delayPrefix ?? "celery_ts.delay");
  const delayQueueType = options.delayQueueType ?? "classic";
  const manager = createConnectionManager({ ...connection, logger, what: "transport" });
  const stopConsumers = new Set<() => void>();
  const specs = new Map<string, QueueSpec>();
  let closed = false;

  const capabilities: TransportCapabilities = {
    delayedDelivery: delayMode,
    priority: maxPriority === undefined ? false : "higher-first",
    deadLetter: deadLetter !== undefined,
    redelivery: "on-disconnect",
  };

  const ensureOpen = (): void => {
    if (closed) throw closedError("transport");
  };

  const resolve = (queue: string): QueueSpec => {
    let spec = specs.get(queue);
    if (!spec) {
      spec = resolveQueue(queue, settings);
      specs.set(queue, spec);
    }
    return spec;
  };

  /**
   * Declares the queue (or a broadcast queue's exchange), once per connection, after its
   * dead-letter queue: RabbitMQ drops what it dead-letters to an exchange that is not there yet.
   */
  const ensureQueue = async (
    session: Session,
    spec: QueueSpec,
    actualName = spec.name,
  ): Promise<void> => {
    if (deadLetter && !spec.broadcast) await ensureDeadLetterQueue(session, spec.name);
    if (spec.broadcast && actualName === spec.name) {
      return session.declare(
        declarationKey("exchange", spec.name, spec.exchange, spec.exchangeType),
        `declare the exchange "${spec.exchange}"`,
        (channel) => declareExchange(channel, spec.exchange, spec.exchangeType),
      );
    }
    return session.declare(
      declarationKey("queue", spec.name, actualName, spec),
      `declare the queue "${actualName}"`,
      (channel) => declareQueue(channel, spec, actualName),
    );
  };

  const ensureDelayTarget = async (session: Session, spec: QueueSpec): Promise<void> => {
    await session.declare(
      declarationKey("delay", names.delivery, delayQueueType),
      `declare the delay exchanges and queues "${names.delivery}"`,
      (channel) => declareDelayTopology(channel, names, delayQueueType),
    );
    await session.declare(
      declarationKey("delay-target", spec.name, names.delivery),
      `bind the queue "${spec.name}" to the delay exchange "${names.delivery}"`,
      (channel) =>
        spec.broadcast
          ? bindDelayExchangeTarget(channel, names, spec.exchange, spec.name)
          : bindDelayTarget(channel, names, spec.name),
    );
  };

  const deadQueueOf = (queue: string): string => `${queue}${deadLetter?.queueSuffix ?? ""}`;

  const ensureDeadLetterQueue = (session: Session, queue: string): Promise<void> => {
    const dl = deadLetter!;
    const deadQueue = deadQueueOf(queue);
    return session.declare(
      declarationKey("dead-letter", queue, dl.exchange, deadQueue),
      `declare the dead-letter queue "${deadQueue}"`,
      (channel) => declareDeadLetterQueue(channel, dl.exchange, deadQueue, queue),
    );
  };

  const keepDeadLetter = async (
    session: Session,
    queue: string,
    message: Message,
    reason: string,
  ): Promise<void> => {
    const dl = deadLetter!;
    await ensureDeadLetterQueue(session, queue);
    const headers = {
      ...decodeFieldTable(message.properties.headers),
      [DEAD_REASON]: reason,
      [DEAD_QUEUE]: queue,
      [DEAD_AT]: Date.now(),
    };
    try {
      await session.publish({
        exchange: dl.exchange,
        routingKey: queue,
        content: message.content,
        options: copyProperties(message, headers),
        what: `dead-letter a message of the queue "${queue}" to the exchange "${dl.exchange}"`,
        timeoutMs: publishTimeoutMs,
        mandatory: true,
      });
    } catch (error) {
      // Its dead-letter queue may have been deleted: declare it again next time.
      session.forget(JSON.stringify(queue));
      throw error;
    }
  };

  const transport: Transport = {
    name: "amqp",
    capabilities,
    async connect() {
      ensureOpen();
      await manager.open();
    },
    async close({ force = false } = {}) {
      if (closed) return;
      closed = true;
      stopConsumers.forEach((stop) => stop());
      stopConsumers.clear();
      await manager.close({ force });
    },
    async publish(message: WireMessage, { queue, priority, availableAt }: PublishOptions) {
      ensureOpen();
      checkPriority("priority", priority, maxPriority ?? 255);
      const spec = resolve(queue);
      const wantsDelay =
        delayMode === "native" && availableAt !== undefined && availableAt > Date.now();
      if (wantsDelay) checkDelayTarget(spec.name);
      // Encoding errors first, before any I/O.
      const { content, options: amqpOptions } = toAmqpMessage(message, {
        ...(priority !== undefined && { priority }),
        dropExpiration: wantsDelay,
      });
      const what = `publish to the queue "${queue}"`;
      const session = await manager.open();
      const send = async (): Promise<void> => {
        await ensureQueue(session, spec);
        let target = publishTarget(spec);
        if (wantsDelay) {
          await ensureDelayTarget(session, spec);
          // Measured now, after the declarations: the delay starts when the message enters.
          const delayMs = availableAt! - Date.now();
          if (delayMs > 0) {
            target = {
              exchange: delayEntry(names),
              routingKey: delayRoutingKey(delayMs, spec.name),
            };
          }
        }
        await session.publish({
          ...target,
          content,
          options: amqpOptions,
          what,
          timeoutMs: publishTimeoutMs,
          mandatory: !spec.broadcast,
        });
      };
      try {
        await withDeadline(send(), publishTimeoutMs, what);
      } catch (error) {
        // The queue may have been deleted behind our back: declare it again next time.
        session.forget(JSON.stringify(spec.name));
        throw mapAmqpError(error, what);
      }
    },
    consume(
      queues: readonly string[],
      onDelivery: (delivery: Delivery) => void,
      consumeOptions: ConsumeOptions,
    ) {
      return runConsumer(
        {
          manager,
          logger,
          resolve: (queue) => resolve(queue),
          prepare: (session, spec, actualName) => ensureQueue(session, spec, actualName),
          fromDelayChain: (exchange) => names.owns(exchange),
          deadLetter: deadLetter ? keepDeadLetter : undefined,
          isClosed: () => closed,
          register(stop) {
            stopConsumers.add(stop);
            return () => stopConsumers.delete(stop);
          },
          reconnectInitialDelayMs: connection.reconnectInitialDelayMs,
          reconnectMaxDelayMs: connection.reconnectMaxDelayMs,
          globalQos: (session) => options.globalQos ?? allowsGlobalQos(session.server),
        },
        queues,
        onDelivery,
        consumeOptions,
      );
    },
    async purge(queue: string) {
      ensureOpen();
      const spec = resolve(queue);
      // A broadcast queue belongs to each consumer: there is no shared queue to purge.
      if (spec.broadcast) return 0;
      const session = await manager.open();
      await ensureQueue(session, spec);
      const { messageCount } = await session.run(`purge the queue "${queue}"`, (channel) =>
        channel.purgeQueue(queue),
      );
      return messageCount;
    },
  };

  if (deadLetter) {
    transport.deadLetters = async (queue: string, { limit }: { limit?: number } = {}) => {
      ensureOpen();
      const max =
        limit === undefined || !Number.isFinite(limit) ? Infinity : Math.max(0, Math.floor(limit));
      const session = await manager.open();
      await ensureDeadLetterQueue(session, queue);
      const channel = await session.channel();
      const letters: DeadLetter[] = [];
      try {
        // A peek: take them unacknowledged, then close the channel, which puts every one back in
        // its place. Nothing is removed, even if this process dies half-way.
        while (letters.length < max) {
          const message = await channel.get(deadQueueOf(queue), { noAck: false });
          if (message === false) break;
          letters.push(deadLetterOf(message, queue));
        }
      } catch (error) {
        throw mapAmqpError(error, `read the dead letters of the queue "${queue}"`);
      } finally {
        await channel.close().catch(() => undefined);
      }
      return letters;
    };
  }

  registerInternals(transport, { manager, publishTimeoutMs });
  return transport;
}
