import {
  CeleryTsError,
  RetryTask,
  asTaskSignal,
  runWithTaskContext,
  taskCallArguments,
  withExceptionArgs,
  type IgnoreTask,
  type RejectTask,
  type RetryOptions,
  type TaskContext,
  type TaskDefinition,
  type TaskMessage,
} from "@celery-ts/core";
import { setLongTimeout, type LongTimeout } from "./long-timeout.ts";
import { TaskAbort, type Terminator } from "./task-abort.ts";

/** How a run ended; the worker turns each into acks, results and retries. */
export type RunOutcome =
  | { kind: "success"; value: unknown }
  | { kind: "failure"; error: unknown; hint?: string }
  | { kind: "retry"; options: RetryOptions }
  | { kind: "signal"; signal: RejectTask | IgnoreTask };

export interface RunTaskInput {
  task: TaskDefinition;
  message: TaskMessage;
  queue: string;
  /** Aborts the task's signal from outside (a shutdown past its grace period). */
  shutdown: AbortSignal;
  /** Aborts the task's signal and stops waiting for it (revoke with terminate). */
  terminate?: Terminator;
  /** Limits set by remote control (`time_limit`): they win over the task's options. */
  timeLimit?: { soft?: number; hard?: number } | undefined;
  updateState: (state: string, meta: unknown) => Promise<void>;
}

function timeLimitError(kind: "soft" | "hard", seconds: number, task: string): CeleryTsError {
  const error = new CeleryTsError(
    "TIME_LIMIT_EXCEEDED",
    `task ${task} ran past its ${kind} time limit of ${seconds} s`,
    { pkg: "worker" },
  );
  error.name = kind === "soft" ? "SoftTimeLimitExceeded" : "TimeLimitExceeded";
  // Stored as Celery stores them: TimeLimitExceeded(hard seconds), SoftTimeLimitExceeded().
  return withExceptionArgs(error, kind === "hard" ? [seconds] : []);
}

/** `currentTask().retry`: the same function for every task. */
const retry = (options: RetryOptions = {}): never => {
  throw new RetryTask(options);
};

/** Runs one task with its context and time limits, and classifies how it ended. */
export async function runTask(input: RunTaskInput): Promise<RunOutcome> {
  const { task, message } = input;
  let callArgs: unknown[];
  try {
    // Bound as Python binds a call; a call that does not fit never runs (with `undefined`).
    callArgs = taskCallArguments(task, message.args, message.kwargs);
  } catch (error) {
    return { kind: "failure", error, ...argumentsHint(task) };
  }
  const abort = new TaskAbort(input.shutdown);
  // The time limit in force: the message's header wins over the task's option, as in Celery.
  const [hardHeader, softHeader] = message.headers.timelimit;
  const fromTask = input.timeLimit ?? input.task.options.timeLimit;
  const soft = softHeader ?? fromTask?.soft;
  const hard = hardHeader ?? fromTask?.hard;
  const softTimer =
    soft === undefined
      ? undefined
      : setLongTimeout(() => abort.abort(timeLimitError("soft", soft, task.name)), soft * 1000);
  const stops: Stops = { abort, hardTimer: undefined };
  try {
    const running = runWithTaskContext(new RunContext(input, abort), () => task.run(...callArgs));
    const { terminate } = input;
    // A function that returned a value, not a promise, is over: nothing to stop or wait for.
    const value = !isThenable(running)
      ? running
      : await (hard === undefined && terminate === undefined
          ? running
          : untilStopped(running, stops, hard, terminate, task.name));
    return { kind: "success", value };
  } catch (error) {
    return classify(task, error);
  } finally {
    softTimer?.clear();
    stops.hardTimer?.clear();
    abort.end();
  }
}

/**
 * A running task's `currentTask()`. A class, not an object literal: its lazy `signal` is a getter
 * on the prototype (a getter in a literal made each context several microseconds slower).
 */
class RunContext implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly queue: string;
  readonly retry = retry;
  readonly updateState: (state: string, meta?: unknown) => Promise<void>;
  readonly #abort: TaskAbort;

  constructor(input: RunTaskInput, abort: TaskAbort) {
    const { message, task } = input;
    const { headers } = message;
    this.id = headers.id;
    this.name = task.name;
    this.retries = headers.retries;
    this.args = message.args;
    this.kwargs = message.kwargs;
    this.rootId = headers.root_id;
    this.parentId = headers.parent_id;
    this.headers = headers;
    this.queue = input.queue;
    this.updateState = input.updateState;
    this.#abort = abort;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

interface Stops {
  abort: TaskAbort;
  hardTimer: LongTimeout | undefined;
}

/**
 * The task's value, unless its hard time limit or a terminate comes first: then its signal is
 * aborted and the wait ends (rejects) with the reason, while the function itself runs on.
 */
function untilStopped(
  running: unknown,
  stops: Stops,
  hard: number | undefined,
  terminate: Terminator | undefined,
  name: string,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const stop = (reason: unknown): void => {
      stops.abort.abort(reason);
      reject(reason);
    };
    if (hard !== undefined) {
      stops.hardTimer = setLongTimeout(() => stop(timeLimitError("hard", hard, name)), hard * 1000);
    }
    terminate?.listen(stop);
    Promise.resolve(running).then(resolve, reject);
  });
}

function classify(task: TaskDefinition, error: unknown): RunOutcome {
  const signal = asTaskSignal(error);
  if (signal?.kind === "retry") return { kind: "retry", options: signal.options };
  if (signal?.kind === "unrecoverable") return { kind: "failure", error };
  if (signal) return { kind: "signal", signal };
  if (shouldAutoRetry(task, error)) return { kind: "retry", options: { error } };
  return { kind: "failure", error };
}

function shouldAutoRetry(task: TaskDefinition, error: unknown): boolean {
  const rule = task.options.autoRetryFor;
  if (!rule) return false;
  if (typeof rule === "function") return rule(error);
  return rule.some((errorClass) => error instanceof errorClass);
}

function argumentsHint(task: TaskDefinition): { hint?: string } {
  if (task.options.params !== undefined) return {};
  return {
    hint:
      `task ${task.name} declares no parameter names, so it takes positional arguments only: ` +
      'declare them (defineTask(name, run, { params: ["a", "b"] })) to accept keyword arguments',
  };
}
