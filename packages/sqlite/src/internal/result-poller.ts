import {
  createResultWaiters,
  decodeStoredResult,
  isCeleryTsError,
  resultTimeoutError,
  type ResultMeta,
  type WaitOptions,
} from "@celery-ts/core";
import { subscribeToChanges } from "./change-feed.ts";
import { PKG } from "./errors.ts";

/** A stored result's row, as the poll reads it. */
export interface ResultRow {
  task_id: string;
  meta: string;
}

/** Decodes a stored result; a value that is not JSON is a `MALFORMED_MESSAGE` error. */
export function decodeRow(row: ResultRow): ResultMeta {
  return decodeStoredResult(row.meta, `the stored result of task ${row.task_id}`, PKG);
}

export interface ResultPollerOptions {
  /** The database file: a store from this process (the change feed) wakes the poll at once. */
  path: string;
  pollIntervalMs: number;
  /** The rows of `taskIds` that are in a ready state and not expired. */
  readyAmong(taskIds: string[]): ResultRow[];
}

/** A wait whose first look has not come yet. */
interface FreshWait {
  taskId: string;
  options: WaitOptions;
  resolve(value: ResultMeta | Promise<ResultMeta>): void;
  reject(error: unknown): void;
}

/**
 * How long the change feed stays subscribed after the last wait ended: a caller awaiting one
 * result after another does not set up a file watch for each.
 */
const LINGER_MS = 1_000;

/**
 * The pending `waitFor()` calls of the SQLite backend: one poll (one query) serves them all,
 * every `pollInterval` while any wait, and at once when this process stores a result or the
 * database file changes.
 */
export class ResultPoller {
  readonly #options: ResultPollerOptions;
  readonly #waiters = createResultWaiters();
  #timer: NodeJS.Timeout | undefined;
  #linger: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Wake-ups before then wait for it: polls take at most half the time (many waiters). */
  #quietUntil = 0;
  /** Waits begun since the last first look (scheduled while there are any). */
  #fresh: FreshWait[] = [];

  constructor(options: ResultPollerOptions) {
    this.#options = options;
  }

  /**
   * The result if it is ready, or a wait for it. The look is on a later tick, one query for all
   * the waits begun in the same turn: awaiting thousands of results costs one, not one each.
   */
  wait(taskId: string, options: WaitOptions): Promise<ResultMeta> {
    // Listen before looking: a store between the look and the subscription would otherwise be
    // seen only by the next poll.
    this.#listen();
    return new Promise<ResultMeta>((resolve, reject) => {
      this.#fresh.push({ taskId, options, resolve, reject });
      if (this.#fresh.length === 1) setImmediate(this.#firstLook);
    });
  }

  /** Stops polling and rejects every pending wait with `error`. */
  close(error: unknown): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#linger);
    this.#timer = this.#linger = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const wait of this.#fresh.splice(0)) wait.reject(error);
    this.#waiters.rejectAll(error);
  }

  #listen(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#unsubscribe ??= subscribeToChanges(this.#options.path, "results", this.#changed);
  }

  /** Nothing waits: stop polling, and unsubscribe unless a wait comes soon. */
  #idle(): void {
    // Waits whose first look is yet to come count: their change feed must stay subscribed.
    if (this.#waiters.keys().length > 0 || this.#fresh.length > 0) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#linger || !this.#unsubscribe) return;
    this.#linger = setTimeout(() => {
      this.#linger = undefined;
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }, LINGER_MS);
    this.#linger.unref();
  }

  /**
   * The database changed: poll now, unless the last poll was costly (one query for thousands of
   * waiters) and recent; then poll once it has been as long again.
   */
  readonly #changed = (): void => {
    const wait = this.#quietUntil - performance.now();
    if (wait <= 0) return this.#poll();
    if (this.#waiters.keys().length === 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#poll, wait);
  };

  /**
   * The first look of the waits begun since the last one: a ready result resolves its wait at
   * once, the others wait for a poll. A read that fails for good fails these waits; one that may
   * succeed later (a locked file) leaves them to the poll, and a stored result that cannot be
   * decoded fails its own wait only.
   */
  readonly #firstLook = (): void => {
    const fresh = this.#fresh;
    this.#fresh = [];
    if (fresh.length === 0) return;
    let ready = new Map<string, ResultRow>();
    try {
      const rows = this.#options.readyAmong([...new Set(fresh.map((wait) => wait.taskId))]);
      ready = new Map(rows.map((row) => [row.task_id, row]));
    } catch (error) {
      if (!isCeleryTsError(error) || !error.retryable) {
        for (const wait of fresh) wait.reject(error);
        return this.#idle();
      }
    }
    for (const { taskId, options, resolve, reject } of fresh) {
      const row = ready.get(taskId);
      if (row) {
        try {
          resolve(decodeRow(row));
        } catch (error) {
          reject(error);
        }
        continue;
      }
      const timeoutError = () => resultTimeoutError(PKG, taskId, options.timeout);
      resolve(this.#waiters.wait(taskId, { ...options, timeoutError }));
    }
    if (this.#waiters.keys().length === 0) return this.#idle();
    this.#timer ??= setTimeout(this.#poll, this.#options.pollIntervalMs);
  };

  readonly #poll = (): void => {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const waiters = this.#waiters;
    if (waiters.keys().length === 0) return this.#idle();
    const started = performance.now();
    try {
      for (const row of this.#options.readyAmong(waiters.keys())) {
        waiters.resolve(row.task_id, () => decodeRow(row));
      }
    } catch (error) {
      if (!isCeleryTsError(error) || !error.retryable) waiters.rejectAll(error);
    }
    const now = performance.now();
    this.#quietUntil = now + (now - started);
    if (waiters.keys().length === 0) return this.#idle();
    this.#timer = setTimeout(this.#poll, this.#options.pollIntervalMs);
  };
}
