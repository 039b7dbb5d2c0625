/** One entry's outcome in a batch call: SQS batch actions succeed or fail entry by entry. */
export type EntryResult<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface BatcherOptions<E, R> {
  /**
   * How long the first entry waits for others to join it. 0: the entries added in the same turn
   * of the event loop go together.
   */
  windowMs: number;
  /** SQS takes at most 10 entries per batch call. */
  maxEntries: number;
  /** The most bytes one call may carry. An entry larger than that goes alone. */
  maxBytes: number;
  /** Sends one batch (entries of one key) and returns one result per entry, in order. */
  run(key: string, entries: E[]): Promise<EntryResult<R>[]>;
}

interface Item<E, R> {
  entry: E;
  bytes: number;
  resolve(value: R): void;
  reject(error: unknown): void;
}

interface Open<E, R> {
  items: Item<E, R>[];
  bytes: number;
  /** Cancels the window's timer. */
  stopTimer(): void;
}

export interface Batcher<E, R> {
  /** Resolves with the entry's own result once its batch has been sent. */
  add(key: string, entry: E, bytes?: number): Promise<R>;
  /** Sends what waits now, without waiting for the window. */
  flush(): void;
  /** Rejects what waits (not what is being sent) with `error`. */
  cancel(error: unknown): void;
}

/**
 * Gathers entries for the same key (a queue URL) into SQS batch calls: SendMessageBatch,
 * DeleteMessageBatch. Each `add()` settles with its own entry's outcome.
 */
export function createBatcher<E, R>(options: BatcherOptions<E, R>): Batcher<E, R> {
  const open = new Map<string, Open<E, R>>();

  const send = (key: string): void => {
    const batch = open.get(key);
    if (!batch) return;
    open.delete(key);
    batch.stopTimer();
    const { items } = batch;
    options
      .run(
        key,
        items.map((item) => item.entry),
      )
      .then(
        (results) => {
          items.forEach((item, index) => {
            const result = results[index];
            if (!result) item.reject(new Error("SQS returned no result for a batch entry"));
            else if (result.ok) item.resolve(result.value);
            else item.reject(result.error);
          });
        },
        (error: unknown) => items.forEach((item) => item.reject(error)),
      );
  };

  const schedule = (key: string): (() => void) => {
    if (options.windowMs > 0) {
      const timer = setTimeout(() => send(key), options.windowMs);
      return () => clearTimeout(timer);
    }
    const immediate = setImmediate(() => send(key));
    return () => clearImmediate(immediate);
  };

  return {
    add(key, entry, bytes = 0) {
      return new Promise<R>((resolve, reject) => {
        let batch = open.get(key);
        if (batch && batch.bytes + bytes > options.maxBytes) {
          send(key);
          batch = undefined;
        }
        if (!batch) {
          batch = { items: [], bytes: 0, stopTimer: schedule(key) };
          open.set(key, batch);
        }
        batch.items.push({ entry, bytes, resolve, reject });
        batch.bytes += bytes;
        if (batch.items.length >= options.maxEntries || batch.bytes >= options.maxBytes) {
          send(key);
        }
      });
    },
    flush() {
      for (const key of [...open.keys()]) send(key);
    },
    cancel(error) {
      for (const [key, batch] of [...open]) {
        open.delete(key);
        batch.stopTimer();
        batch.items.forEach((item) => item.reject(error));
      }
    },
  };
}
