// What the broadcast drivers (remote control and events) share: routing by binding key, and
// handing a stored envelope to a subscriber.
import { topicMatches, type BroadcastDelivery, type ExchangeRef } from "../broadcast.ts";
import { decodeEnvelope } from "../envelope.ts";
import type { Logger } from "../logger.ts";

/**
 * True when a message published to `exchange` with `routingKey` reaches a queue bound with
 * `bindingKey`: every queue of a fanout exchange, an equal key on a direct one, a matching
 * pattern on a topic one (`topicMatches`).
 */
export function bindingMatches(
  exchange: ExchangeRef,
  bindingKey: string,
  routingKey: string,
): boolean {
  if (exchange.type === "fanout") return true;
  if (exchange.type === "direct") return bindingKey === routingKey;
  return topicMatches(bindingKey, routingKey);
}

/**
 * Decodes a stored broadcast envelope and hands its message to `onMessage`. A message that
 * cannot be read (or that the subscriber throws on) is dropped with a warning, never thrown:
 * one bad message must not stop the subscription.
 *
 * @param pkg the driver's name, for the warning: `"redis"`
 */
export function deliverBroadcast(
  pkg: string,
  logger: Logger,
  raw: string,
  routingKey: string,
  onMessage: (delivery: BroadcastDelivery) => void,
): void {
  try {
    onMessage({ message: decodeEnvelope(raw).message, routingKey });
  } catch (error) {
    logger.warn(`${pkg}: dropped an unreadable broadcast message`, { error: String(error) });
  }
}
