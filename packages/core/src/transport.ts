import type { CeleryTsError } from "./errors.ts";
import type { WireMessage } from "./task-message.ts";

/** What a transport does natively. The conformance suite checks every capability claimed. */
export interface TransportCapabilities {
  /**
   * `"native"`: the transport holds a message published with `availableAt` until then.
   * `"worker"`: messages arrive at once and the worker holds early ones, unacknowledged (as Celery
   * does on Redis and RabbitMQ).
   */
  delayedDelivery: "native" | "worker";
  /**
   * How `priority` orders messages, or false when it is ignored. Redis is `"lower-first"` (0 is
   * served first, as in kombu), RabbitMQ `"higher-first"`: the number on the wire is Celery's.
   */
  priority: false | "higher-first" | "lower-first";
  /** `reject({ requeue: false })` keeps the message, with its reason, in `deadLetters()`. */
  deadLetter: boolean;
  /**
   * When the messages of a consumer that died unacknowledged come back: `"on-disconnect"` at once
   * (RabbitMQ, in-memory), `"after-lease"` once the lease (visibility timeout) runs out.
   */
  redelivery: "on-disconnect" | "after-lease";
}

export interface PublishOptions {
  /** The queue to put the message on. */
  queue: string;
  /** Celery's priority, 0-9 (see `capabilities.priority` for the order). */
  priority?: number;
  /** Epoch milliseconds before which the message is not delivered (native delayed delivery). */
  availableAt?: number;
}

interface DeliveryActions {
  /** The queue the message came from. */
  readonly queue: string;
  /** Unique per delivery: a redelivered message gets a new one. */
  readonly deliveryTag: string;
  /** True when the message was delivered before and not acknowledged. */
  readonly redelivered: boolean;
  /** Done with the message: the broker forgets it. */
  ack(): Promise<void>;
  /**
   * Not done: `requeue: true` puts it back for any consumer; `requeue: false` dead-letters it (kept
   * with `reason` where the transport has dead letters).
   */
  reject(options: { requeue: boolean; reason?: string }): Promise<void>;
}

/**
 * One received message. Exactly one of `ack` and `reject` is called, once; until then the message
 * counts against the consumer's prefetch and is redelivered if the consumer dies.
 */
export type Delivery = DeliveryActions &
  (
    | { readonly message: WireMessage; readonly error?: undefined; readonly raw?: undefined }
    /** The transport could not read the envelope; `raw` is what it found. */
    | { readonly message?: undefined; readonly error: CeleryTsError; readonly raw: string }
  );

export interface ConsumeOptions {
  /**
   * At most this many deliveries are outstanding (delivered, not yet acked or rejected). Read it
   * again on every fetch: a worker raises it while it holds early (eta) messages, as Celery does,
   * so that they do not take the slots of work that is due.
   */
  prefetch: number;
  /** Aborting stops consuming; `consume()` then resolves. Outstanding deliveries stay valid. */
  signal: AbortSignal;
}

/** A message kept after `reject({ requeue: false })`, for an operator to inspect. */
export interface DeadLetter {
  queue: string;
  /** The message as stored on the broker. */
  raw: string;
  reason: string;
  /** Epoch milliseconds. */
  rejectedAt: number;
}

/**
 * A broker connection. Drivers move message bytes and headers; encoding, routing, retries and
 * result layout live above them. See docs/writing-a-transport.md for the contract as rules.
 */
export interface Transport {
  /** The driver's name, for logs: "sqlite", "redis", "memory". */
  readonly name: string;
  readonly capabilities: TransportCapabilities;
  /** Idempotent. Other methods connect on first use too. */
  connect(): Promise<void>;
  /**
   * Idempotent. Stops consuming; unacknowledged deliveries come back per `capabilities.redelivery`.
   * `force` skips any flushing (a crash, as far as the broker can tell).
   */
  close(options?: { force?: boolean }): Promise<void>;
  /** Resolves once the broker has the message. */
  publish(message: WireMessage, options: PublishOptions): Promise<void>;
  /** Delivers messages from `queues` to `onDelivery` until `signal` aborts, then resolves. */
  consume(
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<void>;
  /** Deletes the queue's waiting messages; returns how many. Dead letters stay. */
  purge(queue: string): Promise<number>;
  /** The dead letters of a queue, oldest first; present when `capabilities.deadLetter`. */
  deadLetters?(queue: string, options?: { limit?: number }): Promise<DeadLetter[]>;
}
