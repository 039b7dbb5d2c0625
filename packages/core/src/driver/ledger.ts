import { isCeleryTsError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import { toMs } from "./durations.ts";

interface Entry<H> {
  handle: H;
  /** A settle began: later ones do nothing. */
  settling: boolean;
  /** The consumer's prefetch slot was freed (`release` is called once). */
  released: boolean;
  /** Frees the consumer's prefetch slot. */
  release: () => void;
}

/** Frees the entry's slot, once. */
function releaseOnce(entry: Entry<unknown>): void {
  if (entry.released) return;
  entry.released = true;
  entry.release();
}

export interface LedgerOptions<H> {
  pkg: string;
  logger: Logger;
  /** Renews the leases of outstanding messages (the driver's `extendLeases` primitive). */
  extendLeases?: ((handles: readonly H[]) => Promise<void>) | undefined;
  /** Seconds; with `extendLeases`, leases are renewed every third of it. */
  visibilityTimeout?: number | undefined;
  /** Throws the CLOSED error once the transport is closing. */
  ensureOpen(): void;
  /** Work that a graceful close waits for. */
  track<T>(work: Promise<T>): Promise<T>;
  /** How a settle that failed with a retryable error (the broker unreachable) is tried again. */
  backoff?: BackoffOptions;
}

/**
 * The outstanding deliveries of one transport, by delivery tag: settle-once bookkeeping and
 * lease renewal. `createConsumerKit()` keeps one; a driver whose broker pushes deliveries (AMQP)
 * uses one directly. A settle whose write fails with a retryable error (the broker unreachable)
 * is tried again with backoff until it is written or the transport closes, the delivery still
 * outstanding (its lease renewed, its prefetch slot held): an outage of any length loses no ack.
 * Any other failure forgets the delivery and frees its slot: the message comes back after its
 * lease (no longer renewed), and the consumer goes on. (A kit consumer whose source can
 * `ackAndTake` counts a slot free while the ack's first write is under way, as a broker does once
 * the ack arrives: if that write fails, the slot is held again, and its outstanding deliveries can
 * pass the prefetch for a while, never twice the prefetch.)
 */
export class Ledger<H> {
  readonly #entries = new Map<string, Entry<H>>();
  readonly #options: LedgerOptions<H>;
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  #stopped = false;

  constructor(options: LedgerOptions<H>) {
    this.#options = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  handles(): H[] {
    return [...this.#entries.values()].map((entry) => entry.handle);
  }

  add(tag: string, handle: H, release: () => void): void {
    this.#entries.set(tag, { handle, settling: false, released: false, release });
    this.#scheduleRenewal();
  }

  /**
   * Runs `write` for the delivery `tag` once: later calls do nothing, and every call fails with
   * CLOSED after close (rule 7). The write's error is the caller's (the worker logs it).
   */
  async settle(tag: string, write: (handle: H) => Promise<void>): Promise<void> {
    await this.settleOnce(tag, write);
  }

  /**
   * As `settle`; resolves true when this call wrote, false when the delivery was settled already.
   * Not async itself: the settle's own promise (tracked) is the one handed back.
   */
  settleOnce(tag: string, write: (handle: H) => Promise<void>): Promise<boolean> {
    try {
      this.#options.ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const entry = this.#entries.get(tag);
    if (!entry || entry.settling) return Promise.resolve(false);
    entry.settling = true;
    return this.#options.track(this.#settle(tag, entry, write));
  }

  async #settle(tag: string, entry: Entry<H>, write: (handle: H) => Promise<void>): Promise<true> {
    try {
      try {
        await write(entry.handle);
      } catch (error) {
        await this.#writeRetrying(entry, write, error);
      }
    } finally {
      // Forgotten once written, or given up on: if the write failed, the lease is no longer
      // renewed and the message comes back after it runs out, rather than staying reserved.
      if (this.#entries.get(tag) === entry) this.#entries.delete(tag);
      // Only now may the consumer take more: a requeued message is back in its place first.
      releaseOnce(entry);
    }
    return true;
  }

  /**
   * After the first write failed with `first`: a retryable failure is tried again with backoff
   * while the transport is open; any other is thrown.
   */
  async #writeRetrying(
    entry: Entry<H>,
    write: (handle: H) => Promise<void>,
    first: unknown,
  ): Promise<void> {
    let error = first;
    for (let failures = 1; ; failures++) {
      if (!isCeleryTsError(error) || !error.retryable || this.#stopped) throw error;
      try {
        this.#options.ensureOpen();
      } catch {
        throw error;
      }
      if (failures === 1) {
        this.#options.logger.debug(`${this.#options.pkg}: a settle failed; retrying`, {
          error: String(error),
        });
      }
      const delay = toMs(backoffDelay(failures, this.#options.backoff));
      await new Promise((resolve) => setTimeout(resolve, delay));
      try {
        await write(entry.handle);
        return;
      } catch (next) {
        error = next;
      }
    }
  }

  /** Forgets every delivery (no broker write) and stops renewing; returns their handles. */
  drain(): H[] {
    this.#stopped = true;
    clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
    const handles = this.handles();
    for (const entry of this.#entries.values()) releaseOnce(entry);
    this.#entries.clear();
    return handles;
  }

  /** Resolves once a renewal under way is done. */
  async idle(): Promise<void> {
    await this.#renewing;
  }

  async #renew(): Promise<void> {
    const { extendLeases, logger, pkg } = this.#options;
    const handles = this.handles();
    if (handles.length === 0 || !extendLeases) return;
    try {
      await extendLeases(handles);
    } catch (error) {
      logger.warn(`${pkg}: could not renew the leases of outstanding messages; retrying`, {
        error: String(error),
      });
    }
  }

  // A third of the lease leaves two more tries before it runs out. Unref'd: outstanding messages
  // alone must not keep a process alive (if it exits, the leases run out and they come back).
  #scheduleRenewal(): void {
    const { visibilityTimeout, extendLeases } = this.#options;
    if (!extendLeases || visibilityTimeout === undefined) return;
    if (this.#stopped || this.#renewTimer || this.#renewing || this.#entries.size === 0) return;
    this.#renewTimer = setTimeout(
      () => {
        this.#renewTimer = undefined;
        this.#renewing = this.#renew().finally(() => {
          this.#renewing = undefined;
          this.#scheduleRenewal();
        });
      },
      toMs(visibilityTimeout) / 3,
    );
    this.#renewTimer.unref();
  }
}
