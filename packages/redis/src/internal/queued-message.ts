import { randomUUID } from "node:crypto";
import { encodeEnvelope, type PublishOptions, type WireMessage } from "@celery-ts/core";
import { clampPriority, type KeyLayout } from "./keys.ts";

/**
 * A message as `publish()` puts it on Redis: kombu's JSON envelope, and the list it is LPUSHed
 * onto (the queue's list for its priority step). `availableAt` needs nothing here: the message's
 * eta header makes the worker hold it, as a Celery worker does (delayedDelivery: "worker").
 * Every path that publishes (one message, a batch, beat's atomic tick) encodes with this.
 */
export function queuedMessage(
  keys: KeyLayout,
  message: WireMessage,
  { queue, priority }: PublishOptions,
): { list: string; raw: string } {
  const raw = encodeEnvelope(message, {
    exchange: "",
    routingKey: queue,
    priority: priority ?? 0,
    deliveryTag: randomUUID(),
  });
  return { list: keys.list(queue, clampPriority(priority ?? 0)), raw };
}
