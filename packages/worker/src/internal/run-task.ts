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
  terminate?: AbortSignal;
  /** Limits set by remote control (`time_limit`): they win over the task's options. */
  timeLimit?: { soft?: number; hard?: number } | undefined;
  updateState(state: string, meta: unknown): Promise<void>;
}

/** The time limit in force: the message's header wins over the task's option, as in Celery. */
function limits(input: RunTaskInput): { soft?: number; hard?: number } {
  const [hard, soft] = input.message.headers.timelimit;
  const fromTask = input.timeLimit ?? input.task.options.timeLimit ?? {};
  const result: { soft?: number; hard?: number } = {};
  const s = soft ?? fromTask.soft;
  const h = hard ?? fromTask.hard;
  if (s !== undefined) result.soft = s;
  if (h !== undefined) result.hard = h;
  return result;
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

/** Runs one task with its context and time limits, and classifies how it ended. */
export async function runTask(input: RunTaskInput): Promise<RunOutcome> {
  const { task, message } = input;
  const { headers } = message;
  let callArgs: unknown[];
  try {
    // Bound as Python binds a call; a call that does not fit never runs (with `undefined`).
    callArgs = taskCallArguments(task, message.args, message.kwargs);
  } catch (error) {
    return { kind: "failure", error, ...argumentsHint(task) };
  }
  const controller = new AbortController();
  const timers: LongTimeout[] = [];
  const onShutdown = (): void => controller.abort(input.shutdown.reason);
  input.shutdown.addEventListener("abort", onShutdown, { once: true });

  const { soft, hard } = limits(input);
  if (soft !== undefined) {
    timers.push(
      setLongTimeout(() => controller.abort(timeLimitError("soft", soft, task.name)), soft * 1000),
    );
  }
  const { terminate } = input;
  const terminated =
    terminate &&
    new Promise<never>((_, reject) => {
      const onTerminate = (): void => {
        controller.abort(terminate.reason);
        reject(terminate.reason as Error);
      };
      if (terminate.aborted) onTerminate();
      else terminate.addEventListener("abort", onTerminate, { once: true });
    });
  const hardLimit =
    hard === undefined
      ? undefined
      : new Promise<never>((_, reject) => {
          timers.push(
            setLongTimeout(() => {
              const error = timeLimitError("hard", hard, task.name);
              controller.abort(error);
              reject(error);
            }, hard * 1000),
          );
        });

  const context: TaskContext = {
    id: headers.id,
    name: task.name,
    retries: headers.retries,
    args: message.args,
    kwargs: message.kwargs,
    rootId: headers.root_id,
    parentId: headers.parent_id,
    headers,
    queue: input.queue,
    signal: controller.signal,
    retry: (options = {}): never => {
      throw new RetryTask(options);
    },
    updateState: (state, meta) => input.updateState(state, meta),
  };

  try {
    const running = runWithTaskContext(context, async () => task.run(...callArgs));
    const stops = [hardLimit, terminated].filter((p) => p !== undefined);
    const value = await (stops.length > 0 ? Promise.race([running, ...stops]) : running);
    return { kind: "success", value };
  } catch (error) {
    return classify(task, error);
  } finally {
    timers.forEach((timer) => timer.clear());
    input.shutdown.removeEventListener("abort", onShutdown);
  }
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
