/**
 * A rate as Celery writes it: `"10/s"`, `"100/m"`, `"1000/h"`, or a number of tasks per second.
 * `0`, `"0"` and `null` mean no limit.
 */
export type Rate = string | number | null;

/** Which of a task's messages share one limit: by a positional argument, a keyword or a header. */
export type RateLimitGroup =
  | { readonly arg: number }
  | { readonly kwarg: string }
  | { readonly header: string }
  | ((message: {
      readonly args: readonly unknown[];
      readonly kwargs: Readonly<Record<string, unknown>>;
      readonly headers: Readonly<Record<string, unknown>>;
    }) => string | undefined);

export interface RateLimitOptions {
  rate: Rate;
  /**
   * `"worker"`: each worker process keeps to the rate on its own (Celery's `rate_limit`).
   * `"fleet"`: all workers together keep to it, counting in the broker's coordination store.
   * @default "worker"
   */
  scope?: "worker" | "fleet";
  /**
   * One limit per group rather than one per task (BullMQ's group limiter): e.g. `{ arg: 0 }` limits
   * each customer id in the first argument to the rate. Messages without the key share one group.
   * @default none: one limit for the task
   */
  groupBy?: RateLimitGroup;
}

/** A task's `rateLimit` option: a rate, or a rate with its scope and groups. */
export type RateLimit = Rate | RateLimitOptions;

/**
 * A task's `unique` option: a duplicate send within `ttl` returns the handle of the task already
 * sent instead of queueing it again (BullMQ's deduplication, celery-once).
 */
export interface UniqueOptions<Args extends unknown[] = unknown[]> {
  /**
   * What makes two sends duplicates: a string, or a function of the arguments.
   * @default the JSON of the arguments (and keyword arguments)
   */
  key?: string | ((...args: Args) => string);
  /** Seconds a send stays unique after it was sent. */
  ttl: number;
  /**
   * Debounce: each duplicate restarts the `ttl`, so a stream of duplicates keeps resolving to the
   * first send until it pauses for `ttl` seconds.
   * @default false
   */
  extend?: boolean;
}
