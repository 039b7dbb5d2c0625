import type { TaskDeclaration } from "@celery-ts/core";
import type { AsyncResult } from "./async-result.ts";
import type { SendOptions } from "./send-options.ts";

/** The leading positional arguments of `Args`: `[]`, `[A]`, `[A, B]` for `[A, B]`. */
export type ArgsPrefix<Args extends unknown[]> = Prefixes<Required<Args>>;
type Prefixes<T extends unknown[]> = T extends [infer Head, ...infer Tail]
  ? [] | [Head, ...Prefixes<Tail>]
  : T;

/**
 * One call by name, as Python's `apply_async(args=..., kwargs=...)`: keyword arguments alone (all
 * the required ones), or leading positional arguments with the rest by keyword.
 */
export type TaskCall<Args extends unknown[], Kwargs extends object> = object extends Kwargs
  ? never
  : { args?: undefined; kwargs: Kwargs } | { args: ArgsPrefix<Args>; kwargs?: Partial<Kwargs> };

/**
 * A task bound to a client, typed by its declaration: `delay(2, 3)` compiles for a
 * `TaskDeclaration<[number, number], number>`, `delay("x")` does not, and `get()` resolves a number.
 * A task declared with `params` also takes keyword arguments:
 * `applyAsync({ kwargs: { a: 2, b: 3 } })`, or `applyAsync({ args: [2], kwargs: { b: 3 } })`.
 */
export interface TaskHandle<Args extends unknown[], Result, Kwargs extends object = object> {
  readonly name: string;
  readonly declaration: TaskDeclaration<Args, Result, Kwargs>;
  /**
   * Sends the task with these arguments and the declaration's options. A keywords-style task
   * (`style: "keywords"`) takes one object, sent as keyword arguments.
   */
  delay(...args: Args): Promise<AsyncResult<Result>>;
  /** Sends the task with options for this call (countdown, eta, expires, priority, queue, ...). */
  applyAsync(args: Args, options?: SendOptions): Promise<AsyncResult<Result>>;
  /** Sends the task with keyword arguments (and leading positional ones), typed by its `params`. */
  applyAsync(call: TaskCall<Args, Kwargs>, options?: SendOptions): Promise<AsyncResult<Result>>;
}
