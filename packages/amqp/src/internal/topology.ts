import type { Channel } from "amqplib";
import type { AmqpQueueOptions, ExchangeType, QueueType } from "../amqp-transport.ts";
import { configError } from "./errors.ts";
import { encodeFieldTable } from "./field-table.ts";

/** How the transport lays out queues; from the transport's options. */
export interface TopologySettings {
  queues: Readonly<Record<string, AmqpQueueOptions>>;
  maxPriority: number | undefined;
  queueType: QueueType;
  deadLetter: { exchange: string; queueSuffix: string; declareArguments: boolean } | undefined;
}

/** One queue as Celery (kombu) declares it, resolved from the options. */
export interface QueueSpec {
  /** The name users publish to and consume: for a broadcast queue, the fanout exchange's. */
  name: string;
  exchange: string;
  exchangeType: ExchangeType;
  routingKey: string;
  broadcast: boolean;
  type: QueueType;
  durable: boolean;
  autoDelete: boolean;
  /** Declaration arguments, as the user would write them (x-max-priority, x-queue-type...). */
  arguments: Record<string, unknown>;
}

/**
 * kombu's declarations: `Queue(name, Exchange(name, "direct"), routing_key=name)`, durable, not
 * auto-deleted, with Celery's `task_queue_max_priority` as `x-max-priority` when set; Broadcast
 * queues are `Queue("bcast.<uuid>", Exchange(name, "fanout"), auto_delete=True)`.
 */
export function resolveQueue(name: string, settings: TopologySettings): QueueSpec {
  if (name === "") throw configError("a queue name must not be empty");
  const options = settings.queues[name] ?? {};
  const broadcast = options.broadcast ?? false;
  const type = options.type ?? settings.queueType;
  const exchangeType: ExchangeType = broadcast ? "fanout" : (options.exchangeType ?? "direct");
  if (broadcast && options.exchangeType !== undefined && options.exchangeType !== "fanout") {
    throw configError(`queue "${name}": a broadcast queue's exchange is a fanout exchange`);
  }
  if (broadcast && type === "quorum") {
    throw configError(
      `queue "${name}": a broadcast queue is auto-deleted, which quorum queues cannot be; ` +
        'set type: "classic" for it',
    );
  }
  const args: Record<string, unknown> = { ...options.arguments };
  if (type === "quorum") args["x-queue-type"] = "quorum";
  const maxPriority =
    options.maxPriority === undefined ? settings.maxPriority : options.maxPriority;
  if (maxPriority !== undefined && maxPriority !== null && !("x-max-priority" in args)) {
    if (type === "quorum") {
      throw configError(
        `queue "${name}": quorum queues have no x-max-priority; leave maxPriority unset for ` +
          "quorum queues (or set maxPriority: null on this queue)",
      );
    }
    args["x-max-priority"] = maxPriority;
  }
  const deadLetter = settings.deadLetter;
  if (deadLetter?.declareArguments && !broadcast) {
    args["x-dead-letter-exchange"] ??= deadLetter.exchange;
    args["x-dead-letter-routing-key"] ??= name;
  }
  return {
    name,
    exchange: options.exchange ?? name,
    exchangeType,
    routingKey: options.routingKey ?? name,
    broadcast,
    type,
    durable: true,
    autoDelete: broadcast,
    arguments: args,
  };
}

/** Where a message for the queue is published: as Celery does, direct queues by the anon exchange. */
export function publishTarget(spec: QueueSpec): { exchange: string; routingKey: string } {
  if (spec.exchangeType === "direct" && !spec.broadcast) {
    return { exchange: "", routingKey: spec.name };
  }
  return { exchange: spec.exchange, routingKey: spec.routingKey };
}

/** A stable key for the declaration cache: the same name with other arguments is another key. */
export function declarationKey(kind: string, ...parts: unknown[]): string {
  return JSON.stringify([kind, ...parts]);
}

export async function declareExchange(
  channel: Channel,
  name: string,
  type: ExchangeType,
): Promise<void> {
  // kombu's Exchange defaults: durable, not auto-deleted, not internal, no arguments.
  if (name !== "") await channel.assertExchange(name, type, { durable: true, autoDelete: false });
}

/** Declares the queue (under `actualName`, a broadcast queue's own) with its exchange and binding. */
export async function declareQueue(
  channel: Channel,
  spec: QueueSpec,
  actualName: string,
): Promise<void> {
  await declareExchange(channel, spec.exchange, spec.exchangeType);
  await channel.assertQueue(actualName, {
    durable: spec.durable,
    autoDelete: spec.autoDelete,
    exclusive: false,
    arguments: encodeFieldTable(spec.arguments),
  });
  if (spec.exchange !== "") {
    await channel.bindQueue(actualName, spec.exchange, spec.routingKey);
  }
}

/**
 * The dead-letter queue of `queue`, bound to the dead-letter exchange by the queue's name, with
 * `args` (its bounds); `args` undefined: only checked (it exists, declared some other way).
 */
export async function declareDeadLetterQueue(
  channel: Channel,
  exchange: string,
  deadQueue: string,
  queue: string,
  args: Record<string, unknown> | undefined,
): Promise<void> {
  await declareExchange(channel, exchange, "direct");
  if (args === undefined) await channel.checkQueue(deadQueue);
  else {
    await channel.assertQueue(deadQueue, {
      durable: true,
      autoDelete: false,
      exclusive: false,
      arguments: encodeFieldTable(args),
    });
  }
  await channel.bindQueue(deadQueue, exchange, queue);
}
