import type { PreparedStore } from "../result-backend.ts";

/**
 * What a queue-backed driver supplies to the kit: a way to take messages, and the four broker
 * writes on a taken one. The kit does the rest (see `createConsumerKit`).
 *
 * `H` is the driver's handle of one taken message: whatever its writes need (a row id and a
 * delivery tag, a receipt handle, the stored text).
 */
export interface DriverPrimitives<H> {
  /**
   * Starts consuming `queues` (each listed once, in the caller's order): one source, or one per
   * lane that is taken from independently (SQS long-polls each queue on its own). Called once
   * per `consume()`; may throw a `CeleryTsError` (`consume()` then rejects with it).
   */
  open(queues: readonly string[]): MessageSource<H> | readonly MessageSource<H>[];
  /**
   * The broker forgets the message; with `result` (only ever one that `carries` accepted), the
   * result is written in the same broker write.
   */
  ack(handle: H, result?: PreparedStore): Promise<void>;
  /**
   * Optional: whether `ack()` can write this result prepared by a backend (`prepareStore()`),
   * because the backend is on the broker's own server. No broker write. Without it, deliveries
   * have no `ackWithResult()`.
   */
  carries?(result: PreparedStore): boolean;
  /** The message goes back on its queue for any consumer, marked redelivered. */
  requeue(handle: H): Promise<void>;
  /** The message is kept aside with `reason` (or dropped where the broker has no dead letters). */
  deadLetter(handle: H, reason: string): Promise<void>;
  /**
   * Renews the lease (visibility timeout) of outstanding messages; the kit calls it every third
   * of `visibilityTimeout` while any are outstanding. Leave it out where the broker needs no
   * lease (it returns the messages of a closed connection by itself).
   */
  extendLeases?(handles: readonly H[]): Promise<void>;
  /**
   * Puts taken messages back at once, the first of `handles` to be delivered first: the ones a
   * consumer never saw, and a graceful close's outstanding ones. Default: `requeue` each.
   */
  handBack?(handles: readonly H[]): Promise<void>;
}

/** One message as taken from the broker: the kit decodes `raw` and settles through `handle`. */
export interface TakenMessage<H> {
  readonly handle: H;
  /** The queue it came from. */
  readonly queue: string;
  /** The message as stored (a kombu envelope, malformed or not). */
  readonly raw: string;
  /** Delivered before and not acknowledged (requeued, handed back, or its consumer died). */
  readonly redelivered: boolean;
  /** The delivery's tag where the broker names deliveries itself. @default a new UUID */
  readonly deliveryTag?: string;
}

/** What a `take()` found. */
export interface TakeBatch<H> {
  readonly messages: readonly TakenMessage<H>[];
  /**
   * Seconds after which to take again though nothing woke the source (a delayed message comes
   * due then). @default the kit's `pollInterval`
   */
  readonly lookAgainIn?: number;
}

/** One acknowledgement for `MessageSource.ackAndTake()`. */
export interface AckToWrite<H> {
  readonly handle: H;
  /** The result to write with it (one that `carries` accepted). */
  readonly result: PreparedStore | undefined;
}

export interface TakeRequest {
  /** Take at most this many. */
  readonly max: number;
  /**
   * Aborted when the consumer stops. Abort only waits that hold no message (for a connection to
   * come back); a take that may have taken messages must return them (the kit hands them back).
   */
  readonly signal: AbortSignal;
  /** Other lanes wait for room: return soon (a short long-poll) rather than wait long. */
  readonly hurry: boolean;
}

/** One lane of a consumer: where it takes messages from. */
export interface MessageSource<H> {
  /** Takes up to `max` due messages. Throw a retryable `CeleryTsError` to be retried with backoff. */
  take(request: TakeRequest): Promise<TakeBatch<H>>;
  /**
   * Optional: acknowledges every one of `acks` (writing each one's `result` with it, as `ack()`
   * does) and takes up to `request.max` messages (none when 0), in one broker round trip. Where
   * a source has it, the kit writes all the acks of a tick with it instead of `ack()`, taking
   * with them when the slots they free would start a take anyway. A rejection fails every ack
   * of the call (the kit retries a retryable one). A batch with fewer messages than asked for
   * should say `lookAgainIn: 0` when a plain `take()` arms something this one does not (a
   * wake-up).
   */
  ackAndTake?(acks: readonly AckToWrite<H>[], request: TakeRequest): Promise<TakeBatch<H>>;
  /** Calls `wake` when messages may have arrived; returns the unsubscribe. */
  subscribe?(wake: () => void): () => void;
  /** Called once when the consumer stops. */
  close?(): void;
}
