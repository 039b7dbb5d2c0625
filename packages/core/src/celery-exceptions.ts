/**
 * Celery's own exceptions, by class name, with the module Python finds each in: what a Python
 * worker stores as `exc_module` (Celery 5.2.6 `prepare_exception`: `type(exc).__module__`). The
 * time-limit and worker-lost classes are billiard's, re-exported by `celery.exceptions`, so a
 * Python client's `except celery.exceptions.TimeLimitExceeded` catches them either way.
 */
export const CELERY_EXCEPTION_MODULES: Readonly<Record<string, string>> = Object.freeze({
  TimeLimitExceeded: "billiard.exceptions",
  SoftTimeLimitExceeded: "billiard.exceptions",
  WorkerLostError: "billiard.exceptions",
  Terminated: "billiard.exceptions",
  NotRegistered: "celery.exceptions",
  Retry: "celery.exceptions",
  Reject: "celery.exceptions",
  Ignore: "celery.exceptions",
  MaxRetriesExceededError: "celery.exceptions",
  TaskRevokedError: "celery.exceptions",
  InvalidTaskError: "celery.exceptions",
  ChordError: "celery.exceptions",
  QueueNotFound: "celery.exceptions",
});

const EXC_ARGS = Symbol.for("celery-ts.exc-args");

/**
 * Gives `error` the Python exception arguments to store as `exc_message` (Celery stores
 * `exc.args`), e.g. `[300]` for a `TimeLimitExceeded(300)`, where the message is for people.
 */
export function withExceptionArgs<E extends Error>(error: E, args: readonly unknown[]): E {
  Object.defineProperty(error, EXC_ARGS, { value: [...args] });
  return error;
}

/** The exception arguments `withExceptionArgs` gave, or undefined. */
export function exceptionArgs(error: Error): unknown[] | undefined {
  return (error as unknown as Record<symbol, unknown[] | undefined>)[EXC_ARGS];
}

/** Celery's `NotRegistered(name)`: what a worker stores for a task it does not know. */
export function notRegisteredError(taskName: string): Error {
  const error = new Error(`task "${taskName}" is not registered on this worker`);
  error.name = "NotRegistered";
  return withExceptionArgs(error, [taskName]);
}

/**
 * Celery's `MaxRetriesExceededError`, with Celery's message: a task that asked to retry with no
 * error of its own, past its `maxRetries`.
 */
export function maxRetriesExceededError(
  task: string,
  id: string,
  args: string | null,
  kwargs: string | null,
): Error {
  const error = new Error(
    `Can't retry ${task}[${id}] args:${args ?? "()"} kwargs:${kwargs ?? "{}"}`,
  );
  error.name = "MaxRetriesExceededError";
  return error;
}
