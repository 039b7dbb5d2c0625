/** What a task's hooks are told about the run that ended. */
export interface TaskHookInfo {
  readonly id: string;
  /** The task's name. */
  readonly task: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** How many times the task was retried before this run. */
  readonly retries: number;
}

/**
 * Per-task hooks, Celery's `Task.on_success`, `on_failure`, `on_retry` and `after_return`. The
 * worker calls them after the task's state is stored and before the message is acknowledged, and
 * awaits them. A hook that throws is logged; the stored result and the acknowledgement stand.
 */
export interface TaskHooks<Result = unknown> {
  /** The task returned; `result` is what was stored. */
  onSuccess?: (result: Result, info: TaskHookInfo) => unknown;
  /** The task failed for good: it threw, ran out of retries or past its hard time limit. */
  onFailure?: (error: unknown, info: TaskHookInfo) => unknown;
  /** The task will run again (a retry was requested or `autoRetryFor` matched). */
  onRetry?: (error: unknown, info: TaskHookInfo) => unknown;
  /** After any of the above: the state (SUCCESS, FAILURE, RETRY) and the result or error. */
  afterReturn?: (state: string, result: unknown, info: TaskHookInfo) => unknown;
}
