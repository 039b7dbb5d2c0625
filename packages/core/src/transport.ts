import type { Broadcast } from "./broadcast.ts";
import { CeleryTsError, isCeleryTsError } from "./errors.ts";
import type { PreparedStore } from "./result-backend.ts";
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
  /**
   * `reject({ requeue: false })` keeps the message, with its reason, in `deadLetters()`; the
   * transport then also has `replayDeadLetters()` and `purgeDeadLetters()`, and bounds its dead
   * letters (see `DeadLetterLimits`). False when turned off (`?dead_letters=off`).
   */
  deadLetter: boolean;
  /**
   * When the messages of a consumer that died unacknowledged come back: `"on-disconnect"` at once
   * (RabbitMQ, in-memory), `"after-lease"` once the lease (visibility timeout) runs out.
   */
  redelivery: "on-disconnect" | "after-lease";
  /**
   * Seconds: the longest time after which an unacknowledged message whose consumer died or
   * closed comes back. 0 where the broker returns it at once (RabbitMQ, in-memory); for a leased
   * broker, its visibility timeout plus however late it notices. The conformance suite waits
   * this long (and a stated margin) to prove that something did not happen.
   */
  redeliveryWindow: number;
  /**
   * `consume()` calls `ConsumeOptions.onConsuming` once it is live (rule 45). Every transport of
   * celery-ts does; absent in one written before that callback existed, and then the worker's
   * `start()` resolves as soon as `consume()` has started instead of waiting for it.
   */
  reportsConsuming?: boolean;
}

export interface PublishOptions {
  /** The queue to put the message on. */
  queue: string;
  /** Celery's priority, 0-9 (see `capabilities.priority` for the order). */
  priority?: number;
  /** Epoch milliseconds before which the message is not delivered (native delayed delivery). */
  availableAt?: number;
}

/** One message of a `publishBatch()`. */
export interface PublishItem {
  message: WireMessage;
  options: PublishOptions;
}

/** One message of a batch that did not reach the broker, and why. */
export interface BatchFailure {
  /** Its index in the batch. */
  index: number;
  /** Its task id (the `id` header), when it has one. */
  taskId: string | undefined;
  error: unknown;
}

const UNSENT = Symbol.for("celery-ts.unsent");

/**
 * Settles a batch publish from one outcome per message (in batch order): resolves when every
 * message reached the broker, else throws a `CeleryTsError` that names each message that did not,
 * with its reason. Its code and `retryable` are the first failure's; {@link unsentOf} gives the
 * messages to publish again (the others are on the broker: a retry of the whole batch would
 * queue them twice). Transports with partial batch failures (SQS, RabbitMQ) end with it.
 */
export function settleBatch(
  batch: readonly PublishItem[],
  outcomes: readonly PromiseSettledResult<unknown>[],
  pkg = "core",
): void {
  const failures: BatchFailure[] = [];
  outcomes.forEach((outcome, index) => {
    if (outcome.status === "fulfilled") return;
    const id = batch[index]?.message.headers.id;
    failures.push({
      index,
      taskId: typeof id === "string" ? id : undefined,
      error: outcome.reason,
    });
  });
  const [first] = failures;
  if (!first) return;
  const reasons = failures
    .slice(0, 3)
    .map(({ index, taskId, error }) => {
      const reason = error instanceof Error ? error.message : String(error);
      return `${taskId === undefined ? `message ${index}` : `task ${taskId}`}: ${reason}`;
    })
    .join("; ");
  const more = failures.length > 3 ? `; and ${failures.length - 3} more` : "";
  const error = new CeleryTsError(
    isCeleryTsError(first.error) ? first.error.code : "CONNECTION",
    `${failures.length} of ${batch.length} messages were not published (the others are on the ` +
      `broker): ${reasons}${more}`,
    {
      pkg,
      retryable: failures.every((f) => isCeleryTsError(f.error) && f.error.retryable),
      cause: first.error,
    },
  );
  Object.defineProperties(error, {
    failures: { value: failures, enumerable: true },
    [UNSENT]: { value: failures.map((f) => batch[f.index]!) },
  });
  throw error;
}

/**
 * The messages of a failed batch publish that are not on the broker (see {@link settleBatch}),
 * or undefined for any other error (then nothing is known: publish the whole batch again).
 */
export function unsentOf(error: unknown): readonly PublishItem[] | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  return (error as Record<symbol, PublishItem[] | undefined>)[UNSENT];
}

/**
 * Publishes a batch with the transport's `publishBatch()`, else message by message, in order
 * (each once the one before is on the broker). A failure names the messages left unsent
 * ({@link unsentOf}).
 */
export async function publishAll(
  transport: Transport,
  batch: readonly PublishItem[],
): Promise<void> {
  if (batch.length === 0) return;
  if (batch.length > 1 && transport.publishBatch) return transport.publishBatch(batch);
  const outcomes: PromiseSettledResult<void>[] = [];
  for (const [index, item] of batch.entries()) {
    try {
      await transport.publish(item.message, item.options);
      outcomes.push({ status: "fulfilled", value: undefined });
    } catch (reason) {
      outcomes.push({ status: "rejected", reason });
      // The rest are not tried: later messages never overtake an earlier one.
      const rest = batch.slice(index + 1).map(() => ({ status: "rejected" as const, reason }));
      outcomes.push(...rest);
      break;
    }
  }
  if (batch.length === 1 && outcomes[0]?.status === "rejected") throw outcomes[0].reason;
  settleBatch(batch, outcomes);
}

export interface DeliveryActions {
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
  /**
   * Optional: writes a result prepared by the backend (`ResultBackend.prepareStore()`) and
   * acknowledges, in one broker write, when the broker and the backend share a server (Redis).
   * Resolves true once both are done; false, having written nothing, when this transport cannot
   * carry that result (then store it and `ack()` as usual). A rejection is a failed `ack()`:
   * the result may not be stored either, so the caller stores it itself.
   */
  ackWithResult?(result: PreparedStore): Promise<boolean>;
}

/**
 * One received message. Exactly one of `ack` and `reject` is called, once; until then the message
 * counts against the consumer's prefetch and is redelivered if the consumer dies.
 */
export type Delivery = DeliveryActions &
  (
    | { readonly message: WireMessage; readonly error?: undefined; readonly raw?: undefined }
    /**
     * The transport could not read the envelope (or refused it for its size); `raw` is what it
     * found (its head only for an oversized one), `taskId` the id its headers name when readable.
     */
    | {
        readonly message?: undefined;
        readonly error: CeleryTsError;
        readonly raw: string;
        readonly taskId?: string;
      }
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
  /**
   * Called once, when this consumer is live on every queue: a message published to one of them
   * from then on reaches it (unless another consumer takes it first). RabbitMQ: once every
   * queue's basic.consume is confirmed (a broadcast queue exists only from then). Transports whose
   * queues keep messages until they are taken (the driver kit's): as soon as the consume loop
   * runs. Never called from inside `consume()`, nor once consuming has ended. The worker's
   * `start()` resolves after it. Every transport calls it (docs/writing-a-transport.md).
   */
  onConsuming?: () => void;
}

/** A message kept after `reject({ requeue: false })`, for an operator to inspect. */
export interface DeadLetter {
  queue: string;
  /**
   * The message as stored on the broker; `""` when it was not kept because it alone is over the
   * dead letters' byte limit (the reason says so; such a letter cannot be replayed).
   */
  raw: string;
  reason: string;
  /** Epoch milliseconds. */
  rejectedAt: number;
  /** The task id the message names, when it is readable. */
  taskId?: string;
  /**
   * The task's name, where the driver keeps the message's headers apart from its body (RabbitMQ:
   * the `task` header); elsewhere `raw` is the whole envelope, whose `headers.task` names it.
   */
  taskName?: string;
}

/** Which dead letters of a queue `replayDeadLetters()` and `purgeDeadLetters()` act on. */
export interface DeadLetterSelection {
  /** Only the dead letters of this task id. @default all */
  taskId?: string;
  /** At most this many, oldest first. @default all */
  limit?: number;
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
  /**
   * Publishes many messages in as few round trips as the broker allows (one pipeline on Redis,
   * batches of 10 on SQS, confirms awaited together on RabbitMQ, one transaction on SQLite and
   * PostgreSQL), in order within a queue; resolves once the broker has them all. A failure
   * rejects; when some messages are on the broker and others not, with `settleBatch()`'s error,
   * which names the unsent ones. Optional: `publishAll()` falls back to `publish()` per message.
   */
  publishBatch?(batch: readonly PublishItem[]): Promise<void>;
  /** Delivers messages from `queues` to `onDelivery` until `signal` aborts, then resolves. */
  consume(
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<void>;
  /** Deletes the queue's waiting messages; returns how many. Dead letters stay. */
  purge(queue: string): Promise<number>;
  /** Messages waiting in the queue (not delivered to a consumer); absent where it is not cheap. */
  depth?(queue: string): Promise<number>;
  /** The dead letters of a queue, oldest first; present when `capabilities.deadLetter`. */
  deadLetters?(queue: string, options?: { limit?: number }): Promise<DeadLetter[]>;
  /**
   * Puts dead letters back on their queue as waiting messages (oldest first, each once, removed
   * from the dead letters); returns how many. A letter whose message was not kept is skipped.
   * Present when `capabilities.deadLetter`.
   */
  replayDeadLetters?(queue: string, options?: DeadLetterSelection): Promise<number>;
  /** Deletes dead letters for good; returns how many. Present when `capabilities.deadLetter`. */
  purgeDeadLetters?(queue: string, options?: DeadLetterSelection): Promise<number>;
  /**
   * Remote control and events on the same broker (a new `Broadcast` with connections of its own);
   * absent where the driver has none. See `resolveBroadcast()`.
   */
  broadcast?(): Broadcast;
  /**
   * Calls `listener` each time one of the transport's broker connections is lost (after it had
   * been up) or comes back; returns a function that stops it. The worker counts them in its
   * metrics. Optional: drivers that reconnect offer it (Redis, RabbitMQ).
   */
  onConnectionEvent?(listener: (event: ConnectionEvent) => void): () => void;
}

/** A broker connection of a transport lost or recovered (`Transport.onConnectionEvent`). */
export interface ConnectionEvent {
  type: "lost" | "recovered";
  /** Which connection: "command", "consumer", "wake-up", "publisher"... */
  role: string;
}
