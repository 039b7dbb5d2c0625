import type { RetryPolicy } from "./retry-policy.ts";
import { CeleryTsError } from "./errors.ts";
import { parseParams, type ParamStyle } from "./task-params.ts";
import type { RateLimit, UniqueOptions } from "./task-flow-options.ts";
import type { TaskHooks } from "./task-hooks.ts";

export type ErrorClass = abstract new (...args: never[]) => Error;

export interface TaskOptions extends TaskHooks {
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
  /**
   * The function's parameter names, so keyword arguments (Python's `add.delay(a=1, b=2)`) and
   * mixed positional + keyword calls bind as in Python: `["a", "b"]`; `"b?"` is optional (the
   * function's default applies), `"*rest"` takes extra positional arguments, `"**extra"` extra
   * keyword arguments as an object. A call that does not fit stores FAILURE with Python's
   * TypeError. Without `params`, a task takes positional arguments only and refuses keywords.
   * @default none
   */
  params?: readonly string[];
  /**
   * `"positional"`: `run(a, b)`. `"keywords"`: `run({ a, b })`, one object of every bound
   * argument by name; producers then send it as keyword arguments (`kwargs`), as Python does.
   * @default "positional"
   */
  style?: ParamStyle;
  /**
   * Celery's `rate_limit`: at most this many runs per second, minute or hour (`"10/s"`,
   * `"100/m"`, `"1000/h"`), per worker process, or across the fleet with `{ rate, scope: "fleet" }`.
   * A message that must wait stays unacknowledged and takes no concurrency slot.
   * @default none
   */
  rateLimit?: RateLimit;
  /**
   * Deduplication: a send whose key was sent within `ttl` seconds returns the earlier task's handle
   * instead of queueing again. Needs a broker with a coordination store.
   * @default none
   */
  unique?: UniqueOptions;
}

/** Task options whose hooks are typed with the task's arguments and result. */
export type TypedTaskOptions<Args extends unknown[], Result> = Omit<
  TaskOptions,
  keyof TaskHooks | "unique"
> &
  TaskHooks<Result> & { unique?: UniqueOptions<Args> };

/**
 * A task's name, options and types, without its implementation: what a producer needs. Declare a
 * task in a module that both the web server and the worker import, or declare a task that only a
 * Python worker implements.
 */
export interface TaskDeclaration<
  Args extends unknown[] = unknown[],
  Result = unknown,
  Kwargs extends object = object,
> {
  readonly name: string;
  readonly options: TaskOptions;
  /**
   * Carries the types only; never set. `kwargs` is the keyword arguments' type: `object` when
   * the task declares no `params` (then it takes no keyword arguments).
   */
  readonly types?: { args: Args; result: Result; kwargs: Kwargs };
}

/** A task with its implementation: what a worker runs. */
export interface TaskDefinition<
  Args extends unknown[] = unknown[],
  Result = unknown,
  Kwargs extends object = object,
> extends TaskDeclaration<Args, Result, Kwargs> {
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
/** A task's keyword arguments, e.g. `{ a: number; b: number }`; `object` without `params`. */
export type TaskKwargs<T> = T extends TaskDeclaration<unknown[], unknown, infer K> ? K : never;

type Indexes<T extends readonly unknown[]> = Extract<keyof T, `${number}`>;
type RequiredName<N> = N extends `*${string}` | `${string}?` ? never : N;
type OptionalName<N> = N extends `*${string}` ? never : N extends `${infer K}?` ? K : never;
type ArgAt<Args extends unknown[], I> = I extends keyof Args ? Args[I] : unknown;
type ExtraKwargs<P extends readonly string[]> = [Extract<P[number], `**${string}`>] extends [never]
  ? unknown
  : Record<string, unknown>;

/**
 * The keyword arguments of a positional function `(...args: Args)` whose parameters are named
 * `P`: `KwargsOf<["a", "b?"], [number, string?]>` is `{ a: number; b?: string }`.
 */
export type KwargsOf<P extends readonly string[], Args extends unknown[]> = Simplify<
  {
    [I in Indexes<P> as RequiredName<P[I]>]: ArgAt<Args, I>;
  } & {
    [I in Indexes<P> as OptionalName<P[I]>]?: Exclude<ArgAt<Args, I>, undefined>;
  } & ExtraKwargs<P>
>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/**
 * What a value of type `T` reads back as after a trip through JSON: a `bigint` comes back as a
 * `bigint` only beyond 2^53 and as a `number` otherwise (JSON does not say which it was), so it is
 * typed `bigint | number`. A task's result type is `WireValue` of what its function returns.
 */
export type WireValue<T> = T extends bigint
  ? bigint | number
  : T extends Date | ((...args: never[]) => unknown)
    ? T
    : T extends object
      ? { [K in keyof T]: WireValue<T[K]> }
      : T;

/** What `defineTask` returns for `params` in the positional style. */
type PositionalOptions<P> = TaskOptions & { params: P; style?: "positional" };
/** What `defineTask` returns for `params` in the keywords style. */
type KeywordsOptions<P> = TaskOptions & { params: P; style: "keywords" };

/** Declares a task by name and types; `defineTask(declaration, run)` implements it. */
export function declareTask<
  Args extends unknown[] = unknown[],
  Result = unknown,
  Kwargs extends object = object,
>(
  name: string,
  options: TypedTaskOptions<Args, Result> = {},
): TaskDeclaration<Args, Result, Kwargs> {
  if (typeof name !== "string" || name === "") {
    throw new TypeError('[celery-ts:core] a task needs a non-empty name, e.g. "emails.send"');
  }
  if (options.params !== undefined) parseParams(name, options.params, options.style);
  return Object.freeze({ name, options: Object.freeze({ ...options }) as TaskOptions });
}

/**
 * Defines a runnable task. The argument and result types flow to `client.task(add).delay(...)`.
 * Inside `run`, `currentTask()` gives the id, retries, the soft time limit's signal and `retry()`.
 *
 * With `params`, keyword arguments bind by name as in Python (see `TaskOptions.params`).
 *
 * @example defineTask("tasks.add", (a: number, b: number) => a + b)
 * @example defineTask("tasks.add", (a: number, b = 0) => a + b, { params: ["a", "b?"] })
 * @example defineTask("tasks.add", ({ a, b }: { a: number; b: number }) => a + b,
 *            { params: ["a", "b"], style: "keywords" })
 * @example defineTask(addDeclaration, (a, b) => a + b, { retry: { maxRetries: 5 } })
 */
export function defineTask<Kwargs extends object, Result, const P extends readonly string[]>(
  name: string,
  run: (kwargs: Kwargs) => Result | Promise<Result>,
  options: KeywordsOptions<P>,
): TaskDefinition<[Kwargs], WireValue<Awaited<Result>>, Kwargs>;
export function defineTask<Args extends unknown[], Result, const P extends readonly string[]>(
  name: string,
  run: (...args: Args) => Result | Promise<Result>,
  options: PositionalOptions<P>,
): TaskDefinition<Args, WireValue<Awaited<Result>>, KwargsOf<P, Args>>;
export function defineTask<Args extends unknown[], Result, Kwargs extends object = object>(
  nameOrDeclaration: string | TaskDeclaration<Args, Result, Kwargs>,
  run: (...args: Args) => Result | Promise<Result>,
  options?: TypedTaskOptions<Args, WireValue<Awaited<Result>>>,
): TaskDefinition<Args, WireValue<Awaited<Result>>, Kwargs>;
export function defineTask<Args extends unknown[], Result>(
  nameOrDeclaration: string | TaskDeclaration<Args, Result>,
  run: (...args: Args) => Result | Promise<Result>,
  options: TypedTaskOptions<Args, Awaited<Result>> = {},
): TaskDefinition<Args, Awaited<Result>> {
  const declaration =
    typeof nameOrDeclaration === "string" ? declareTask(nameOrDeclaration) : nameOrDeclaration;
  if (typeof run !== "function") {
    throw new TypeError(`[celery-ts:core] task "${declaration.name}" needs a function to run`);
  }
  const merged = { ...declaration.options, ...options } as TaskOptions;
  if (merged.params !== undefined) checkParams(declaration.name, merged, run.length);
  return Object.freeze({
    name: declaration.name,
    options: Object.freeze(merged),
    run: run as (...args: Args) => Awaited<Result> | Promise<Awaited<Result>>,
  });
}

/** `params` must name at least every parameter the function requires. */
function checkParams(name: string, options: TaskOptions, runLength: number): void {
  const list = parseParams(name, options.params ?? [], options.style);
  const takes = list.style === "keywords" ? 1 : list.named.length + (list.kwargs ? 1 : 0);
  if (runLength > takes && list.rest === undefined) {
    throw new CeleryTsError(
      "CONFIG",
      `task "${name}": its function takes ${runLength} parameters but params names ` +
        `${list.style === "keywords" ? "one object (style keywords)" : list.named.length}; ` +
        "name every parameter, in order",
    );
  }
}
