import type { TaskDeclaration } from "@celery-ts/core";
import type { AsyncResult } from "./async-result.ts";
import type { SendOptions } from "./send-options.ts";

/**
 * A task bound to a client, typed by its declaration: `delay(2, 3)` compiles for a
 * `TaskDeclaration<[number, number], number>`, `delay("x")` does not, and `get()` resolves a number.
 */
export interface TaskHandle<Args extends unknown[], Result> {
  readonly name: string;
  readonly declaration: TaskDeclaration<Args, Result>;
  /** Sends the task with these arguments and the declaration's options. */
  delay(...args: Args): Promise<AsyncResult<Result>>;
  /** Sends the task with options for this call (countdown, eta, expires, priority, queue, ...). */
  applyAsync(args: Args, options?: SendOptions): Promise<AsyncResult<Result>>;
}
