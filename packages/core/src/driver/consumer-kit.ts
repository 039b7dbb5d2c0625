import type { CeleryTsError } from "../errors.ts";
import { silentLogger, type Logger } from "../logger.ts";
import type { ConsumeOptions, Delivery } from "../transport.ts";
import type { BackoffOptions } from "./backoff.ts";
import { ConsumeLoop, type LoopContext } from "./consume-loop.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./dead-letters.ts";
import { toMs } from "./durations.ts";
import { closedError, configError } from "./errors.ts";
import { Ledger } from "./ledger.ts";
import type { DriverPrimitives, MessageSource } from "./primitives.ts";

export interface ConsumerKitOptions<H> {
  /** The driver's name, in errors and logs: `"redis"`. */
  pkg: string;
  /** What `close()` closes, in words, for the CLOSED error: `"Redis transport"`. */
  what: string;
  primitives: DriverPrimitives<H>;
  /** Where recovered errors go (failed renewals, hand-backs, takes retried). @default silentLogger */
  logger?: Logger;
  /**
   * Seconds a taken message stays reserved for its consumer (the broker's lease or visibility
   * timeout). With `primitives.extendLeases`, the kit renews outstanding leases every third of it.
   * @default none: no renewal
   */
  visibilityTimeout?: number;
  /** Seconds before a lane that found nothing takes again, unless woken sooner. 0 for a source
   * whose take waits by itself (a long poll). @default 1 */
  pollInterval?: number;
  /** The most messages one take asks for. @default Infinity */
  maxBatch?: number;
  /**
   * Take only once a quarter of the prefetch is free (or nothing is outstanding): one round trip
   * per batch rather than per message, for brokers where a take is a round trip.
   * @default false
   */
  batchWhenBusy?: boolean;
  /** How a take that failed with a retryable error is retried. @default { initial: 0.1, max: 5 } */
  backoff?: BackoffOptions;
  /**
   * The level at which a retried take is logged: `"debug"` where the driver's connection already
   * reports the loss (Redis).
   * @default "warn"
   */
  retryLogLevel?: "warn" | "debug";
  /**
   * A taken message larger than this many bytes is not decoded: it is delivered as an error
   * (`MALFORMED_MESSAGE`, the reason naming its size and task id), which the worker dead-letters.
   * Drivers that can see the size first refuse such messages on the broker instead.
   * @default DEFAULT_MAX_MESSAGE_BYTES (16 MiB)
   */
  maxMessageBytes?: number;
  /**
   * Seconds a graceful `close()` waits for takes and settles under way, at most (a server that
   * stopped answering is not waited for longer).
   * @default 5
   */
  closeTimeout?: number;
}

/** The consuming half of a transport, built by `createConsumerKit()`. */
export interface ConsumerKit<H> {
  /** The transport's `consume()`. */
  consume(
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<void>;
  /** True once `close()` began. */
  readonly closed: boolean;
  /** Throws the CLOSED error once `close()` began: call it first in publish, purge... */
  ensureOpen(): void;
  /** The CLOSED error of this transport. */
  closedError(): CeleryTsError;
  /**
   * Stops every consumer. Graceful: waits (up to `closeTimeout`) for takes and settles under way,
   * then hands back the outstanding deliveries at once. Forced: forgets them (they come back as
   * after a crash). Idempotent. Call it before closing the driver's connection.
   */
  close(options?: { force?: boolean }): Promise<void>;
  /** Work a graceful close waits for (a publish, a postponement). */
  track<T>(work: Promise<T>): Promise<T>;
  /** Handles of the outstanding deliveries of every consumer. */
  outstanding(): H[];
}

/** The kit's state; `createConsumerKit()` hands out its public half. */
class Kit<H> implements ConsumerKit<H> {
  readonly #options: ConsumerKitOptions<H>;
  readonly #logger: Logger;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #loops = new Set<ConsumeLoop<H>>();
  readonly #ledger: Ledger<H>;
  readonly #context: LoopContext<H>;
  #closing: Promise<void> | undefined;
  #forced = false;

  constructor(options: ConsumerKitOptions<H>) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    const { pkg, primitives } = options;
    this.#ledger = new Ledger<H>({
      pkg,
      logger: this.#logger,
      extendLeases: primitives.extendLeases && ((handles) => primitives.extendLeases!(handles)),
      visibilityTimeout: options.visibilityTimeout,
      backoff: options.backoff ?? {},
      ensureOpen: this.ensureOpen,
      track: this.track,
    });
    this.#context = {
      pkg,
      primitives,
      ledger: this.#ledger,
      logger: this.#logger,
      pollInterval: options.pollInterval ?? 1,
      maxBatch: options.maxBatch ?? Number.POSITIVE_INFINITY,
      batchWhenBusy: options.batchWhenBusy ?? false,
      retryLogLevel: options.retryLogLevel ?? "warn",
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      backoff: options.backoff ?? {},
      forced: () => this.#forced,
      track: this.track,
      handBack: (handles) => this.#handBack(handles),
    };
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  readonly closedError = (): CeleryTsError => closedError(this.#options.pkg, this.#options.what);

  readonly ensureOpen = (): void => {
    if (this.#closing) throw this.closedError();
  };

  readonly track = <T>(work: Promise<T>): Promise<T> => {
    this.#inflight.add(work);
    const done = (): void => void this.#inflight.delete(work);
    work.then(done, done);
    return work;
  };

  readonly outstanding = (): H[] => this.#ledger.handles();

  readonly consume: ConsumerKit<H>["consume"] = (queues, onDelivery, consumeOptions) => {
    if (this.#closing) return Promise.reject(this.closedError());
    const unique = [...new Set(queues)];
    if (unique.length === 0) {
      return Promise.reject(configError(this.#options.pkg, "consume() needs at least one queue"));
    }
    let sources: readonly MessageSource<H>[];
    try {
      const opened = this.#options.primitives.open(unique);
      sources = Array.isArray(opened) ? opened : [opened as MessageSource<H>];
    } catch (error) {
      return Promise.reject(error);
    }
    const loop = new ConsumeLoop(this.#context, sources, onDelivery, consumeOptions);
    this.#loops.add(loop);
    const forget = (): void => void this.#loops.delete(loop);
    loop.done.then(forget, forget);
    loop.start();
    this.#tellConsuming(loop, consumeOptions);
    return loop.done;
  };

  /**
   * A queue keeps its messages until they are taken, so a running loop is a live consumer: tell
   * `onConsuming` on a later tick (never from inside consume()) unless the loop stopped by then.
   */
  #tellConsuming(loop: ConsumeLoop<H>, { onConsuming }: ConsumeOptions): void {
    if (!onConsuming) return;
    setImmediate(() => {
      if (loop.stopped) return;
      try {
        onConsuming();
      } catch (error) {
        this.#logger.warn(`${this.#options.pkg}: the onConsuming callback threw`, {
          error: String(error),
        });
      }
    });
  }

  readonly close = ({ force = false }: { force?: boolean } = {}): Promise<void> => {
    this.#closing ??= this.#shutDown(force);
    return this.#closing;
  };

  async #handBack(handles: readonly H[]): Promise<void> {
    if (handles.length === 0) return;
    const { primitives, pkg } = this.#options;
    try {
      if (primitives.handBack) await primitives.handBack(handles);
      else for (const handle of handles) await primitives.requeue(handle);
    } catch (error) {
      this.#logger.warn(`${pkg}: could not hand messages back; they come back after their lease`, {
        error: String(error),
      });
    }
  }

  async #shutDown(force: boolean): Promise<void> {
    this.#forced = force;
    for (const loop of this.#loops) loop.stop();
    if (force) {
      this.#ledger.drain();
      return;
    }
    // Takes under way hand back what they took; settles finish. Bounded: a server that stopped
    // answering is not waited for.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, toMs(this.#options.closeTimeout ?? 5));
    });
    const settled = (async () => {
      while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
      await this.#ledger.idle();
    })();
    await Promise.race([settled, timeout]);
    clearTimeout(timer);
    await this.#handBack(this.#ledger.drain());
  }
}

/**
 * What queue-backed transports share, once: the consume loop and its flow control, settle-once
 * bookkeeping, lease renewal, decoding, hand-back and backoff. The driver supplies primitives
 * (take, ack, requeue, dead-letter, extend) and keeps publish, purge and dead letters. The
 * methods are bound: `consume: kit.consume` is fine.
 */
export function createConsumerKit<H>(options: ConsumerKitOptions<H>): ConsumerKit<H> {
  return new Kit(options);
}
