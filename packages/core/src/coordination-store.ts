import { CeleryTsError } from "./errors.ts";
import type { PublishOptions, Transport } from "./transport.ts";
import type { WireMessage } from "./task-message.ts";

/**
 * A small, shared key-value store with the atomic operations that coordinate a fleet: beat's
 * leader lease and tick records, fleet-wide rate limits, unique tasks. Each operation is atomic on
 * the server (a Lua script in Redis, a transaction in SQLite, one statement in PostgreSQL); expiry is judged by the store, so
 * the clocks of the processes that use it need not agree.
 *
 * Keys and values are strings. Keys are the caller's (e.g. `beat:default:leader`); an
 * implementation may put its own prefix before them, and keeps them apart from its broker and
 * result keys. Durations are seconds, as everywhere in celery-ts; fractions are allowed and kept
 * to the millisecond. An expired key is absent for every operation.
 *
 * Implementations: `createMemoryStore()` (core, one process), `@celery-ts/redis`,
 * `@celery-ts/sqlite` and `@celery-ts/postgres` (`createStoreFromUrl`). `resolveStore()` builds one from a URL. The
 * `storeConformance()` suite of `@celery-ts/testing` is the contract as tests.
 */
export interface CoordinationStore {
  /** The implementation's name, for logs: "memory", "redis", "sqlite", "postgres". */
  readonly name: string;
  /** Idempotent. Other methods connect on first use too. */
  connect(): Promise<void>;
  /** Idempotent. Later calls reject with a `CLOSED` error. */
  close(): Promise<void>;
  /** The value of `key`, or undefined when it is absent (or expired). */
  get(key: string): Promise<string | undefined>;
  /**
   * The seconds (to the millisecond) until `key` expires, by the store's clock: `Infinity` when
   * it has no expiry, undefined when it is absent (or expired). Beat's followers read the leader
   * lease's, to try to take it the moment it runs out.
   */
  ttl(key: string): Promise<number | undefined>;
  /**
   * Sets `key` to `value` only when it is absent (or expired); true when it was set. `ttl` gives
   * the new key an expiry; without it the key stays until deleted.
   */
  setIfAbsent(key: string, value: string, options?: TtlOptions): Promise<boolean>;
  /**
   * Sets `key` to `value` only when its current value is `expected` (`undefined`: only when it is
   * absent); true when it was set. The key's expiry is replaced: `ttl`, or none.
   *
   * With `fence`, the write also requires the counter at `fence.key` (see `increment`) to still
   * equal `fence.token`, checked in the same atomic step: a holder whose token was superseded (a
   * newer holder incremented the counter) cannot write, however long it was paused.
   */
  compareAndSet(
    key: string,
    expected: string | undefined,
    value: string,
    options?: CompareAndSetOptions,
  ): Promise<boolean>;
  /** Deletes `key` only when its value is `expected`; true when it was deleted. */
  deleteIfEquals(key: string, expected: string): Promise<boolean>;
  /**
   * The keys that start with `prefix` (an empty prefix: every key), with their values, sorted by
   * key. Meant for small sets (a schedule's entries): it may scan the store.
   */
  list(prefix: string): Promise<StoreEntry[]>;
  /**
   * Adds `by` (a whole number, default 1) to the integer counter at `key`, created at 0 when
   * absent, and returns the new value. `ttl` is set when the counter is created (and when it has
   * no expiry); later increments keep the expiry it has: a fixed window for rate limits. Without
   * `ttl` the counter never expires: a monotonically increasing source of fencing tokens.
   * The value of a key that is not a counter makes it reject.
   */
  increment(key: string, options?: IncrementOptions): Promise<number>;
  /**
   * Optional capability: publishing through `transport` and writing a key of this store in one
   * atomic step on the server (see `AtomicPublisher`). Offered only when the store and the
   * transport come from the same package and share one server and database (the same Redis
   * database, SQLite file or PostgreSQL database); undefined otherwise, and then the caller
   * publishes and records in two steps. Beat uses it to send each tick exactly once.
   */
  atomicPublisher?(transport: Transport): AtomicPublisher | undefined;
}

/** Publishes a message and writes a store key together: both happen, or neither. */
export interface AtomicPublisher {
  /**
   * Publishes `message` as `transport.publish(message, options)` does (same layout, readable by
   * every consumer of the queue), if and only if `compareAndSet(record.key, record.expected,
   * record.value, { fence: record.fence })` succeeds, in one atomic step: a process killed during
   * it leaves both or neither. Resolves to whether it published (false: the record or the fence
   * did not match, and nothing was written). A rejection (a lost connection) may or may not have
   * done both: read the key to know.
   */
  publishIfSet(
    message: WireMessage,
    options: PublishOptions,
    record: RecordedWrite,
  ): Promise<boolean>;
}

/** The compare-and-set an `AtomicPublisher` makes with its publish. */
export interface RecordedWrite {
  key: string;
  /** The value the key must hold; undefined: it must be absent. */
  expected: string | undefined;
  value: string;
  /** Write only while this fence holds (see `compareAndSet`). @default undefined (no fence) */
  fence?: Fence;
}

export interface TtlOptions {
  /** Seconds until the key expires (> 0). @default undefined (never) */
  ttl?: number;
}

export interface CompareAndSetOptions extends TtlOptions {
  /** Write only while the counter at `key` still equals `token`. @default undefined (no fence) */
  fence?: Fence;
}

export interface Fence {
  /** A counter written by `increment()`. */
  key: string;
  /** The value `increment()` returned to this holder. */
  token: number;
}

export interface IncrementOptions extends TtlOptions {
  /** A whole number, negative to decrement. @default 1 */
  by?: number;
}

export interface StoreEntry {
  key: string;
  value: string;
}

/**
 * The expiry of `options.ttl` in whole milliseconds (rounded up), or undefined for none; a CONFIG
 * error for anything but a positive finite number. For store implementations.
 */
export function storeTtlMs(options: TtlOptions | undefined, pkg = "core"): number | undefined {
  const ttl = options?.ttl;
  if (ttl === undefined) return undefined;
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new CeleryTsError("CONFIG", `ttl must be a number of seconds > 0, got ${String(ttl)}`, {
      pkg,
    });
  }
  return Math.max(1, Math.ceil(ttl * 1000));
}

/** `options.by`, checked to be a safe whole number. For store implementations. */
export function storeIncrementBy(options: IncrementOptions | undefined, pkg = "core"): number {
  const by = options?.by ?? 1;
  if (!Number.isSafeInteger(by)) {
    throw new CeleryTsError("CONFIG", `by must be a whole number, got ${String(by)}`, { pkg });
  }
  return by;
}
