import type { RetryPolicy } from "./retry-policy.ts";

export type ErrorClass = abstract new (...args: never[]) => Error;

export interface TaskOptions {
  /** The queue `delay()` sends to. @default "celery" */
  queue?: string;
  /** Retry policy for `autoRetryFor` errors and `currentTask().retry()`. */
  retry?: RetryPolicy;
  /** Errors that retry the task automatically (by class, or by a predicate). */
  autoRetryFor?: readonly ErrorClass[] | ((error: unknown) => boolean);
  /**
   * Seconds. At `soft` the task's `currentTask().signal` aborts; at `hard` the worker gives up on
   * the task and stores FAILURE (TimeLimitExceeded).
   */
  timeLimit?: { soft?: number; hard?: number };
  /** Store no result. @default false */
  ignoreResult?: boolean;
  /** Store STARTED when the task starts running. @default false */
  trackStarted?: boolean;
  /** Default priority, 0-9. */
  priority?: number;
  /** Seconds after sending when an unstarted task expires (REVOKED instead of run). */
  expires?: number;
}

/**
 * A task's name, options and types, without its implementation: what a producer needs. Declare a
 * task in a module that both the web server and the worker import, or declare a task that only a
 * Python worker implements.
 */
export interface TaskDeclaration<Args extends unknown[] = unknown[], Result = unknown> {
  readonly name: string;
  readonly options: TaskOptions;
  /** Carries the types only; never set. */
  readonly types?: { args: Args; result: Result };
}

/** A task with its implementation: what a worker runs. */
export interface TaskDefinition<Args extends unknown[] = unknown[], Result = unknown>
  extends TaskDeclaration<Args, Result> {
  readonly run: (...args: Args) => Result | Promise<Result>;
}

/**
 * Any task, whatever its types: what a worker's registry holds. `any[]` is what lets a task taking
 * `(a: number)` stand beside one taking `(s: string)`; the task's own types still check its calls.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskDefinition = TaskDefinition<any[], unknown>;

export type TaskArgs<T> = T extends TaskDeclaration<infer A, unknown> ? A : never;
export type TaskResult<T> = T extends TaskDeclaration<unknown[], infer R> ? R : never;

/** Declares a task by name and types; `defineTask(declaration, run)` implements it. */
export function declareTask<Args extends unknown[] = unknown[], Result = unknown>(
  name: string,
  options: TaskOptions = {},
): TaskDeclaration<Args, Result> {
  if (typeof name !== "string" || name === "") {
    throw new TypeError('[celery-ts:core] a task needs a non-empty name, e.g. "emails.send"');
  }
  return Object.freeze({ name, options: Object.freeze({ ...options }) });
}

/**
 * Defines a runnable task. The argument and result types flow to `client.task(add).delay(...)`.
 * Inside `run`, `currentTask()` gives the id, retries, the soft time limit's signal and `retry()`.
 *
 * @example defineTask("tasks.add", (a: number, b: number) => a + b)
 * @example defineTask(addDeclaration, (a, b) => a + b, { retry: { maxRetries: 5 } })
 */
export function defineTask<Args extends unknown[], Result>(
  nameOrDeclaration: string | TaskDeclaration<Args, Result>,
  run: (...args: Args) => Result | Promise<Result>,
  options: TaskOptions = {},
): TaskDefinition<Args, Awaited<Result>> {
  const declaration =
    typeof nameOrDeclaration === "string" ? declareTask(nameOrDeclaration) : nameOrDeclaration;
  if (typeof run !== "function") {
    throw new TypeError(`[celery-ts:core] task "${declaration.name}" needs a function to run`);
  }
  return Object.freeze({
    name: declaration.name,
    options: Object.freeze({ ...declaration.options, ...options }),
    run: run as (...args: Args) => Awaited<Result> | Promise<Awaited<Result>>,
  });
}
