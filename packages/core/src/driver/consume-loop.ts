import { randomUUID } from "node:crypto";
import { decodeEnvelope } from "../envelope.ts";
import { CeleryTsError, isCeleryTsError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { WireMessage } from "../task-message.ts";
import type { ConsumeOptions, Delivery, DeliveryActions } from "../transport.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import { toMs } from "./durations.ts";
import { oversize, oversizeReason, taskIdOf } from "./dead-letters.ts";
import type { Ledger } from "./ledger.ts";
import type { PreparedStore } from "../result-backend.ts";
import type {
  AckToWrite,
  DriverPrimitives,
  MessageSource,
  TakeBatch,
  TakenMessage,
} from "./primitives.ts";

/** What one consume() needs from its kit. */
export interface LoopContext<H> {
  pkg: string;
  primitives: DriverPrimitives<H>;
  ledger: Ledger<H>;
  logger: Logger;
  pollInterval: number;
  maxBatch: number;
  batchWhenBusy: boolean;
  backoff: BackoffOptions;
  retryLogLevel: "warn" | "debug";
  /** A taken message larger than this (bytes) is delivered as an error, undecoded. */
  maxMessageBytes: number;
  /** True once the transport was closed with `force` (nothing is handed back then). */
  forced(): boolean;
  track<T>(work: Promise<T>): Promise<T>;
  handBack(handles: readonly H[]): Promise<void>;
}

interface Lane<H> {
  source: MessageSource<H>;
  /** Takes under way. */
  takes: number;
  /**
   * How many takes may be under way at once: 2 where the source can ack and take in one round
   * trip (each then takes at most half the prefetch, so that the worker runs one batch while the
   * broker answers the next), else 1.
   */
  depth: number;
  lastTakenAt: number;
  failures: number;
  /** Backing off after a failure until then (epoch ms); a wake-up does not end it. */
  retryAt: number;
  /** Found nothing; looks again then (epoch ms) unless woken sooner. */
  idleUntil: number;
  /**
   * The first take number that may idle the lane when it finds nothing. An earlier take looked
   * before a wake-up (messages may have come after its look), or before a take that found
   * messages: its empty answer is out of date, and idling on it would lose the wake-up.
   */
  idleFrom: number;
  /**
   * The last take to come back found messages: a second take may start while one is under way.
   * Else one at a time, so that an idle lane sends one take per poll.
   */
  busy: boolean;
  /** Acks waiting for this tick's batch (sources with `ackAndTake` only). */
  acks: PendingAck<H>[];
  /** Taken after the stop (or not seen by a throwing callback), by take: handed back together. */
  leftovers: { take: number; rest: readonly TakenMessage<H>[] }[];
}

/** An ack waiting to be written with the others of its tick. */
interface PendingAck<H> extends AckToWrite<H> {
  /** Its first write (a retry's slot stays held: see `#acking`). */
  first: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * One `consume()`: takes from its lanes while prefetch slots are free (prefetch is read again on
 * every take), delivers, and hands back what the callback never saw.
 */
export class ConsumeLoop<H> {
  readonly #ctx: LoopContext<H>;
  readonly #lanes: Lane<H>[];
  readonly #onDelivery: (delivery: Delivery) => void;
  readonly #options: ConsumeOptions;
  readonly #stopping = new AbortController();
  readonly #unsubscribes: (() => void)[] = [];
  #count = 0;
  /**
   * Of those, the ones whose ack's first write is on its way in an `ackAndTake`: their slots are
   * free for takes already, as a broker's prefetch frees a slot when the ack arrives. A failed
   * write holds its slot again, through its retries, until written or given up on.
   */
  #acking = 0;
  /** Prefetch slots promised to takes under way. */
  #reserved = 0;
  #scheduled = false;
  /** Numbers the takes in the order they are sent (which is the order the broker runs them). */
  #takesSent = 0;
  #timer: NodeJS.Timeout | undefined;
  #settle: ((error?: unknown) => void) | undefined;
  readonly done: Promise<void>;

  constructor(
    ctx: LoopContext<H>,
    sources: readonly MessageSource<H>[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ) {
    this.#ctx = ctx;
    this.#onDelivery = onDelivery;
    this.#options = options;
    this.#lanes = sources.map((source) => ({
      source,
      takes: 0,
      depth: source.ackAndTake ? 2 : 1,
      lastTakenAt: 0,
      failures: 0,
      retryAt: 0,
      idleUntil: 0,
      idleFrom: 0,
      busy: true,
      acks: [],
      leftovers: [],
    }));
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = (error) => (error === undefined ? resolve() : reject(error));
    });
  }

  get stopped(): boolean {
    return this.#stopping.signal.aborted;
  }

  start(): void {
    const { signal } = this.#options;
    if (signal.aborted) return this.stop();
    signal.addEventListener("abort", this.#onAbort, { once: true });
    for (const lane of this.#lanes) {
      const unsubscribe = lane.source.subscribe?.(this.wake);
      if (unsubscribe) this.#unsubscribes.push(unsubscribe);
    }
    // Never call onDelivery from inside consume().
    this.wake();
  }

  /** Stops taking; resolves `done` (or rejects it with `error`). Idempotent. */
  stop(error?: unknown): void {
    if (this.stopped) return;
    this.#stopping.abort();
    clearTimeout(this.#timer);
    this.#options.signal.removeEventListener("abort", this.#onAbort);
    for (const unsubscribe of this.#unsubscribes) unsubscribe();
    for (const lane of this.#lanes) lane.source.close?.();
    this.#settle?.(error);
  }

  readonly #onAbort = (): void => this.stop();

  /** Messages may have arrived: every lane takes again, on a later tick. */
  readonly wake = (): void => {
    for (const lane of this.#lanes) {
      lane.idleUntil = 0;
      lane.idleFrom = this.#takesSent;
    }
    this.#schedule();
  };

  /** A slot was freed or a take ended: take again on a later tick where there is room. */
  #schedule(): void {
    if (this.stopped || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#pump);
  }

  readonly #pump = (): void => {
    this.#scheduled = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.stopped) return;
    const { prefetch } = this.#options;
    const now = Date.now();
    const { held, free: room } = this.#room();
    let free = room;
    // Nearly full: a settled delivery wakes us. Taking once a quarter of the prefetch is free
    // (or nothing is held) turns one round trip per message into one per batch.
    const threshold = this.#ctx.batchWhenBusy ? Math.floor(prefetch / 4) : 1;
    if (held + this.#reserved > 0 && free < threshold) return;
    const idle = this.#lanes
      .filter((l) => l.takes < this.#depth(l))
      .sort((a, b) => a.lastTakenAt - b.lastTakenAt);
    const ready = idle.filter((l) => l.retryAt <= now && l.idleUntil <= now);
    // More lanes than free slots: take briefly, so that the others get their turn soon.
    const hurry = ready.length > free;
    for (const [index, lane] of ready.entries()) {
      if (free <= 0) break;
      const max = Math.min(this.#cap(lane), Math.max(1, Math.floor(free / (ready.length - index))));
      free -= max;
      // Reserves its slots at once (before its first await).
      void this.#ctx.track(this.#take(lane, max, hurry));
    }
    // A lane that may run another take at once gets it on the next tick, where there is room.
    if (ready.some((l) => l.takes > 0 && l.takes < this.#depth(l)) && free > 0) this.#schedule();
    const waits = idle.map((l) => Math.max(l.retryAt, l.idleUntil)).filter((at) => at > now);
    if (waits.length > 0 && free > 0) {
      this.#timer = setTimeout(this.#pump, Math.min(...waits) - now);
    }
  };

  async #take(lane: Lane<H>, max: number, hurry: boolean): Promise<void> {
    const take = this.#claim(lane, max);
    let batch: TakeBatch<H>;
    try {
      batch = await lane.source.take({ max, hurry, signal: this.#stopping.signal });
      lane.failures = 0;
    } catch (error) {
      this.#release(lane, max);
      this.#handBackLeftovers(lane);
      return this.#failed(lane, error);
    }
    this.#release(lane, max);
    this.#took(lane, batch, take, max);
  }

  /** How many takes may be under way on `lane` now: its depth while it finds messages, else 1. */
  #depth(lane: Lane<H>): number {
    return lane.busy ? lane.depth : 1;
  }

  /**
   * Slots held (deliveries not being acked) and free for new takes. An ack's first write frees
   * its slot while under way; should it fail, the slot is held again, so that outstanding
   * deliveries may pass the prefetch for a while: never past twice the prefetch.
   */
  #room(): { held: number; free: number } {
    const { prefetch } = this.#options;
    const held = this.#count - this.#acking;
    const free = Math.min(prefetch - held, 2 * prefetch - this.#count) - this.#reserved;
    return { held, free };
  }

  /** The most one take on `lane` asks for. */
  #cap(lane: Lane<H>): number {
    return Math.min(this.#ctx.maxBatch, Math.ceil(this.#options.prefetch / lane.depth));
  }

  /** A take of up to `max` begins on `lane`: the slots are promised to it. Returns its number. */
  #claim(lane: Lane<H>, max: number): number {
    lane.takes++;
    this.#reserved += max;
    return this.#takesSent++;
  }

  #release(lane: Lane<H>, max: number): void {
    lane.takes--;
    lane.lastTakenAt = Date.now();
    this.#reserved -= max;
  }

  /**
   * Delivers what a take of up to `max` found, or lets the lane idle until its next look. Fewer
   * than `max` with a `lookAgainIn` above 0 says the source found nothing more: the lane idles
   * after delivering them, as after an empty take, rather than sending a take sure to be empty.
   */
  #took(lane: Lane<H>, { messages, lookAgainIn }: TakeBatch<H>, take: number, max: number): void {
    const current = take >= lane.idleFrom;
    const drained = messages.length < max && lookAgainIn !== undefined && lookAgainIn > 0;
    lane.busy = messages.length > 0 && !drained;
    if (messages.length > 0) {
      // An earlier take's empty answer may have idled the lane: look again at once, unless this
      // take found the source empty after its messages (and no wake-up came since it was sent).
      lane.idleUntil = drained && current ? Date.now() + toMs(lookAgainIn) : 0;
      lane.idleFrom = Math.max(lane.idleFrom, take + 1);
      this.#deliver(lane, messages, take);
    } else if (current) {
      lane.idleUntil = Date.now() + toMs(lookAgainIn ?? this.#ctx.pollInterval);
    }
    // An earlier take (see `idleFrom`) leaves the lane ready rather than idle.
    // Something taken: look again at once (the callback may have raised the prefetch).
    this.#schedule();
    this.#handBackLeftovers(lane);
  }

  /**
   * How many to take with the acks about to go on `lane`: where the slots free (theirs included)
   * would start a take anyway (the same rule as #pump), else 0.
   */
  #fusedTake(lane: Lane<H>): number {
    const now = Date.now();
    if (this.stopped || lane.takes >= this.#depth(lane)) return 0;
    if (lane.retryAt > now || lane.idleUntil > now) return 0;
    const { prefetch } = this.#options;
    const { held, free } = this.#room();
    const threshold = this.#ctx.batchWhenBusy ? Math.floor(prefetch / 4) : 1;
    if (free < 1 || (held + this.#reserved > 0 && free < threshold)) return 0;
    return Math.min(this.#cap(lane), free);
  }

  /** Acknowledges `tag` (with `result`): with the others of this tick where the source can. */
  #ack(lane: Lane<H>, tag: string, result?: PreparedStore): Promise<boolean> {
    const { ledger, primitives } = this.#ctx;
    if (!lane.source.ackAndTake) {
      return ledger.settleOnce(tag, (handle) => primitives.ack(handle, result));
    }
    let tries = 0;
    return ledger.settleOnce(
      tag,
      (handle) =>
        new Promise<void>((resolve, reject) => {
          const first = tries++ === 0;
          if (lane.acks.push({ handle, result, first, resolve, reject }) === 1) {
            setImmediate(this.#flushAcks, lane);
          }
        }),
    );
  }

  /**
   * Writes the acks gathered on `lane` in one round trip, taking messages in it where the slots
   * they free would start a take anyway. Runs after the consumer stopped too: acks still go.
   */
  readonly #flushAcks = (lane: Lane<H>): void => {
    const acks = lane.acks;
    lane.acks = [];
    const freed = acks.filter((ack) => ack.first).length;
    this.#acking += freed;
    const max = this.#fusedTake(lane);
    const take = max > 0 ? this.#claim(lane, max) : -1;
    const request = { max, hurry: false, signal: this.#stopping.signal };
    let written: Promise<TakeBatch<H>>;
    try {
      written = lane.source.ackAndTake!(acks, request);
    } catch (error) {
      written = Promise.reject(error);
    }
    written.then(
      (batch) => {
        this.#acking -= freed;
        for (const ack of acks) ack.resolve();
        if (max === 0) return;
        this.#release(lane, max);
        this.#took(lane, batch, take, max);
      },
      (error: unknown) => {
        // The ledger tries each ack again (its slot held until written) or gives up on it; the take
        // is simply not made.
        this.#acking -= freed;
        for (const ack of acks) ack.reject(error);
        if (max === 0) return;
        this.#release(lane, max);
        this.#schedule();
        this.#handBackLeftovers(lane);
      },
    );
  };

  #failed(lane: Lane<H>, error: unknown): void {
    if (this.stopped) return;
    if (!isCeleryTsError(error) || !error.retryable) return this.stop(error);
    lane.failures++;
    const delay = toMs(backoffDelay(lane.failures, this.#ctx.backoff));
    lane.retryAt = Date.now() + delay;
    const { logger, retryLogLevel } = this.#ctx;
    const log = retryLogLevel === "warn" ? logger.warn : logger.debug;
    log(`${this.#ctx.pkg}: could not take messages; retrying`, {
      error: String(error),
      retryInMs: Math.round(delay),
    });
    this.#schedule();
  }

  /** Delivers what was taken; what the callback never sees goes back. */
  #deliver(lane: Lane<H>, messages: readonly TakenMessage<H>[], take: number): void {
    for (const [index, taken] of messages.entries()) {
      if (this.stopped) {
        // Stopped while taking, or from inside the callback: the rest go back.
        this.#handBack(lane, messages.slice(index), take);
        return;
      }
      const delivery = this.#register(lane, taken);
      try {
        this.#onDelivery(delivery);
      } catch (error) {
        // A throwing callback ends this consumer; the messages it never saw go back.
        this.#handBack(lane, messages.slice(index + 1), take);
        this.stop(error);
        return;
      }
    }
  }

  #handBack(lane: Lane<H>, rest: readonly TakenMessage<H>[], take: number): void {
    if (rest.length === 0 || this.#ctx.forced()) return;
    lane.leftovers.push({ take, rest });
  }

  /**
   * Once no take is under way on `lane`, hands back what was left over, in the order it was
   * taken: each goes back to the front of its queue, so a later take's must not go back first.
   */
  #handBackLeftovers(lane: Lane<H>): void {
    if (lane.leftovers.length === 0 || lane.takes > 0) return;
    const all = lane.leftovers.sort((a, b) => a.take - b.take).flatMap(({ rest }) => rest);
    lane.leftovers = [];
    void this.#ctx.track(this.#ctx.handBack(all.map((taken) => taken.handle)));
  }

  /** A delivery settled: its prefetch slot is free (one function for every delivery). */
  readonly #released = (): void => {
    this.#count--;
    this.#schedule();
  };

  #register(lane: Lane<H>, taken: TakenMessage<H>): Delivery {
    const { ledger, primitives } = this.#ctx;
    const tag = taken.deliveryTag ?? randomUUID();
    this.#count++;
    ledger.add(tag, taken.handle, this.#released);
    const actions: DeliveryActions = {
      queue: taken.queue,
      deliveryTag: tag,
      redelivered: taken.redelivered,
      ack: async () => void (await this.#ack(lane, tag)),
      reject: ({ requeue, reason }: { requeue: boolean; reason?: string }) =>
        ledger.settle(tag, (handle) =>
          requeue
            ? primitives.requeue(handle)
            : primitives.deadLetter(handle, reason ?? "rejected"),
        ),
    };
    if (primitives.carries) {
      actions.ackWithResult = (result: PreparedStore) =>
        primitives.carries!(result) ? this.#ack(lane, tag, result) : Promise.resolve(false);
    }
    const bytes = oversize(taken.raw, this.#ctx.maxMessageBytes);
    if (bytes !== undefined) {
      // Never decoded: the worker logs and dead-letters it, and only its head stays referenced.
      const taskId = taskIdOf(taken.raw);
      const reason = oversizeReason(bytes, this.#ctx.maxMessageBytes);
      const error = new CeleryTsError("MALFORMED_MESSAGE", reason, { pkg: this.#ctx.pkg });
      const raw = taken.raw.slice(0, 1024);
      return taskId === undefined ? { ...actions, error, raw } : { ...actions, error, raw, taskId };
    }
    try {
      // The message put on the actions object itself: a copy with it spread in cost an object.
      (actions as { message?: WireMessage }).message = decodeEnvelope(taken.raw).message;
      return actions as Delivery;
    } catch (error) {
      const malformed = isCeleryTsError(error)
        ? error
        : new CeleryTsError("MALFORMED_MESSAGE", `malformed message: ${String(error)}`, {
            pkg: this.#ctx.pkg,
            cause: error,
          });
      const taskId = taskIdOf(taken.raw);
      return taskId === undefined
        ? { ...actions, error: malformed, raw: taken.raw }
        : { ...actions, error: malformed, raw: taken.raw, taskId };
    }
  }
}
