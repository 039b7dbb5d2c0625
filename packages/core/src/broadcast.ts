import type { WireMessage } from "./task-message.ts";

/**
 * An exchange in kombu's sense. Celery's remote control uses a `fanout` exchange
 * (`celery.pidbox`) and a `direct` one for replies (`reply.celery.pidbox`); events use the `topic`
 * exchange `celeryev` (on Redis, kombu turns it into a fanout one, as Celery does).
 */
export interface ExchangeRef {
  name: string;
  type: "fanout" | "direct" | "topic";
  /** Survives a broker restart (AMQP). Celery's pidbox exchanges are not durable, `celeryev` is. @default false */
  durable?: boolean;
}

/** A private, short-lived queue bound to an exchange: a worker's mailbox, a reply queue, an event receiver. */
export interface BroadcastQueue {
  name: string;
  /** Deleted by the broker after this many idle seconds (AMQP `x-expires`). */
  expires?: number;
  /** Messages older than this many seconds are dropped (AMQP `x-message-ttl`). */
  messageTtl?: number;
}

/** A received broadcast message: the wire message and the routing key it was published with. */
export interface BroadcastDelivery {
  message: WireMessage;
  routingKey: string;
}

export interface BroadcastSubscription {
  /** Stops delivering and removes the queue (and its binding). Idempotent. */
  close(): Promise<void>;
}

/**
 * Broadcast and reply messaging in kombu's layout, for remote control (kombu's pidbox) and
 * events: what Python's `celery inspect`, `celery control` and `celery events` speak. A driver
 * package provides it as `createBroadcastFromUrl()`; a transport object may offer it as
 * `transport.broadcast()`.
 *
 * Delivery is at most once: a subscriber that is not listening misses the message, as in Celery.
 */
export interface Broadcast {
  /** The driver's name, for logs. */
  readonly name: string;
  /** Idempotent. Other methods connect on first use too. */
  connect(): Promise<void>;
  /** Idempotent: closes every subscription and the connections this object opened. */
  close(): Promise<void>;
  /**
   * Publishes to `exchange`: a fanout exchange reaches every subscriber, a topic exchange those
   * whose binding key matches `routingKey`, a direct exchange the queues bound with `routingKey`.
   * A message that reaches nobody is dropped without error.
   */
  publish(exchange: ExchangeRef, routingKey: string, message: WireMessage): Promise<void>;
  /**
   * Declares `queue`, binds it to `exchange` with `bindingKey` (`#` and `*` wildcards on topic
   * exchanges; ignored by fanout ones) and hands what arrives to `onMessage` until the
   * subscription is closed. Resolves once messages published from now on will be delivered.
   */
  subscribe(
    exchange: ExchangeRef,
    queue: BroadcastQueue,
    bindingKey: string,
    onMessage: (delivery: BroadcastDelivery) => void,
  ): Promise<BroadcastSubscription>;
}

/** A transport that can hand out a `Broadcast` on the same broker. */
export interface BroadcastCapable {
  broadcast?(): Broadcast;
}

/**
 * True when a topic `bindingKey` (AMQP's rules: words split on `.`, `*` one word, `#` zero or
 * more) matches `routingKey`. Drivers without native topic exchanges use it.
 */
export function topicMatches(bindingKey: string, routingKey: string): boolean {
  const match = (pattern: string[], words: string[]): boolean => {
    if (pattern.length === 0) return words.length === 0;
    const [head, ...rest] = pattern;
    if (head === "#") {
      for (let skip = 0; skip <= words.length; skip++) {
        if (match(rest, words.slice(skip))) return true;
      }
      return false;
    }
    if (words.length === 0) return false;
    return (head === "*" || head === words[0]) && match(rest, words.slice(1));
  };
  return match(bindingKey.split("."), routingKey.split("."));
}
