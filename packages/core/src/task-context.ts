import { AsyncLocalStorage } from "node:async_hooks";
import type { RetryOptions } from "./task-signals.ts";

/** What a running task knows about itself: `currentTask()` inside a task's function. */
export interface TaskContext {
  readonly id: string;
  readonly name: string;
  /** How many times this task was retried before this run. */
  readonly retries: number;
  readonly args: readonly unknown[];
  /** Keyword arguments, e.g. from a Python client's `apply_async(kwargs=...)`. */
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly rootId: string | null;
  readonly parentId: string | null;
  /**
   * The message's headers as sent, custom ones included (a Python client's
   * `apply_async(headers=...)`, read there as `self.request.<name>`); integers beyond 2^53 are
   * bigints, exactly.
   */
  readonly headers: Readonly<Record<string, unknown>>;
  readonly queue: string;
  /** Aborts at the soft time limit, and when the worker is shut down past its grace period. */
  readonly signal: AbortSignal;
  /** Throws a `RetryTask`: the worker runs the task again after the countdown. */
  readonly retry: (options?: RetryOptions) => never;
  /** Stores a custom state with meta, e.g. `updateState("PROGRESS", { done: 3, total: 10 })`. */
  readonly updateState: (state: string, meta?: unknown) => Promise<void>;
}

const storage = new AsyncLocalStorage<TaskContext>();

/** The context of the task running in this async call chain; throws outside a task. */
export function currentTask(): TaskContext {
  const context = storage.getStore();
  if (!context) {
    throw new Error("[celery-ts:core] currentTask() was called outside a task's function");
  }
  return context;
}

/** The context of the task running in this async call chain, or undefined outside a task. */
export function findCurrentTask(): TaskContext | undefined {
  return storage.getStore();
}

/** For workers: runs a task's function with its context. */
export function runWithTaskContext<T>(context: TaskContext, fn: () => T): T {
  return storage.run(context, fn);
}
