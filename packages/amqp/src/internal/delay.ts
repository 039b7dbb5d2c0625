import type { Channel } from "amqplib";
import type { QueueType } from "../amqp-transport.ts";
import { configError } from "./errors.ts";
import { encodeFieldTable } from "./field-table.ts";

/**
 * Delayed delivery without plugins, by TTL and dead-lettering (the layout NServiceBus uses on
 * RabbitMQ). Level L is a topic exchange and a queue whose messages all live exactly 2^L ms: as
 * every message in a level queue has the same TTL, the head always expires first, so nothing waits
 * behind a longer-lived message. A delay is written in binary in the routing key, one word per
 * level from the highest: `0.1.1. ... .0.<queue>`. Level L's exchange sends a message whose bit L
 * is 1 to its queue, which dead-letters it to level L-1 when its 2^L ms are up; a 0 bit goes on to
 * level L-1 at once (an exchange-to-exchange binding). After level 0 comes the delivery exchange,
 * where each target queue is bound by the exact number of bit words and its own name. The total
 * time spent is the delay; the message is never delivered early, and it stays in durable queues,
 * persistent, the whole time.
 */
export const DELAY_LEVELS = 32;

/** The longest delay the levels express: 2^32 - 1 ms, about 49.7 days. */
export const MAX_DELAY_MS = 2 ** DELAY_LEVELS - 1;

/** What the transport names its delay exchanges and queues. */
export interface DelayNames {
  level(level: number): string;
  delivery: string;
  /**
   * Whether a message was last routed by one of these exchanges. A delayed message arrives with
   * the exchange it was last dead-lettered to: the level below its lowest 1 bit, or the delivery
   * exchange. (Publishing again to that exchange with the same routing key, as a Python worker's
   * retry does from its delivery_info, goes straight to the queue: the bits below are all 0.)
   */
  owns(exchange: string): boolean;
}

export function delayNames(prefix: string): DelayNames {
  const level = (n: number): string => `${prefix}.L${String(n).padStart(2, "0")}`;
  const delivery = `${prefix}.delivery`;
  return {
    level,
    delivery,
    owns: (exchange) =>
      exchange === delivery ||
      (exchange.startsWith(`${prefix}.L`) && /^\d\d$/.test(exchange.slice(prefix.length + 2))),
  };
}

const ANY_BITS = "*.".repeat(DELAY_LEVELS);

function bitPattern(level: number, bit: "0" | "1"): string {
  return `${"*.".repeat(DELAY_LEVELS - 1 - level)}${bit}.#`;
}

/** The routing key that carries `delayMs` (whole milliseconds, capped at MAX_DELAY_MS) to `queue`. */
export function delayRoutingKey(delayMs: number, queue: string): string {
  const delay = Math.min(Math.max(0, Math.ceil(delayMs)), MAX_DELAY_MS);
  const bits = delay.toString(2).padStart(DELAY_LEVELS, "0").split("");
  return `${bits.join(".")}.${queue}`;
}

/** Checks that a queue can be the target of a delayed message (a topic binding names it). */
export function checkDelayTarget(queue: string): void {
  if (queue.split(".").some((word) => word === "*" || word === "#")) {
    throw configError(
      `queue "${queue}": a delayed message cannot be routed to a queue with "*" or "#" as a ` +
        'dot-separated word; use delayedDelivery: "worker" or rename the queue',
    );
  }
  if (Buffer.byteLength(queue) + ANY_BITS.length > 255) {
    throw configError(
      `queue "${queue}": its name is too long for a delayed message's routing key ` +
        `(at most ${255 - ANY_BITS.length} bytes)`,
    );
  }
}

/** Declares every level and the delivery exchange. Idempotent; run once per connection. */
export async function declareDelayTopology(
  channel: Channel,
  names: DelayNames,
  type: QueueType,
): Promise<void> {
  await channel.assertExchange(names.delivery, "topic", { durable: true, autoDelete: false });
  for (let level = 0; level < DELAY_LEVELS; level++) {
    const exchange = names.level(level);
    const next = level === 0 ? names.delivery : names.level(level - 1);
    await channel.assertExchange(exchange, "topic", { durable: true, autoDelete: false });
    const args: Record<string, unknown> = {
      "x-message-ttl": 2 ** level,
      "x-dead-letter-exchange": next,
    };
    if (type === "quorum") {
      // At-least-once dead-lettering (RabbitMQ 3.10+): a message leaves a level only once the
      // next one has it, even if the node crashes in between.
      Object.assign(args, {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
      });
    }
    await channel.assertQueue(exchange, {
      durable: true,
      autoDelete: false,
      exclusive: false,
      arguments: encodeFieldTable(args),
    });
    await channel.bindQueue(exchange, exchange, bitPattern(level, "1"));
    await channel.bindExchange(next, exchange, bitPattern(level, "0"));
  }
}

/** Binds `queue` to the delivery exchange, so delayed messages for it arrive there. */
export async function bindDelayTarget(
  channel: Channel,
  names: DelayNames,
  queue: string,
): Promise<void> {
  await channel.bindQueue(queue, names.delivery, `${ANY_BITS}${queue}`);
}

/** Binds a (broadcast queue's fanout) exchange to the delivery exchange. */
export async function bindDelayExchangeTarget(
  channel: Channel,
  names: DelayNames,
  exchange: string,
  queue: string,
): Promise<void> {
  await channel.bindExchange(exchange, names.delivery, `${ANY_BITS}${queue}`);
}

/** The exchange a delayed message enters: the highest level. */
export function delayEntry(names: DelayNames): string {
  return names.level(DELAY_LEVELS - 1);
}
