const ERROR_BRAND = Symbol.for("celery-ts.error");

/** Stable codes for every error celery-ts raises; match on `code`, not on the message. */
export type ErrorCode =
  /** A message that cannot be decoded: bad JSON, wrong types, missing headers, too large. */
  | "MALFORMED_MESSAGE"
  /** A content type other than JSON (pickle, yaml, msgpack): never evaluated. */
  | "UNSUPPORTED_CONTENT_TYPE"
  /** A message names a task this worker has not registered. */
  | "UNKNOWN_TASK"
  /** A value that cannot be written as JSON (a cycle, NaN, a function). */
  | "ENCODE"
  /** The broker or backend cannot be reached; retrying later may succeed. */
  | "CONNECTION"
  /** Waiting for a result took longer than allowed. */
  | "TIMEOUT"
  /** A result was asked for, but no result backend is configured. */
  | "NO_RESULT_BACKEND"
  /** The task ran and failed; `TaskFailedError` carries the remote type, message and traceback. */
  | "TASK_FAILED"
  /** The task was revoked or expired before it ran. */
  | "TASK_REVOKED"
  /** The task ran past its hard (or soft) time limit. */
  | "TIME_LIMIT_EXCEEDED"
  /** Bad configuration: an unknown URL scheme, a missing driver package, a bad option. */
  | "CONFIG"
  /** The transport, backend, client or worker was used after `close()`. */
  | "CLOSED";

export interface CeleryTsErrorOptions {
  /** The package that raised it, shown in the message as `[celery-ts:<pkg>]`. */
  pkg?: string;
  /** Whether retrying the same operation later may succeed. @default false */
  retryable?: boolean;
  cause?: unknown;
}

/** The one base class of celery-ts errors. Use `isCeleryTsError()` rather than `instanceof`. */
export class CeleryTsError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: CeleryTsErrorOptions = {}) {
    super(`[celery-ts:${options.pkg ?? "core"}] ${message}`, { cause: options.cause });
    this.name = "CeleryTsError";
    this.code = code;
    this.retryable = options.retryable ?? false;
    Object.defineProperty(this, ERROR_BRAND, { value: true });
  }
}

/** True for any celery-ts error (across duplicate installs), optionally of one code. */
export function isCeleryTsError(error: unknown, code: "TASK_FAILED"): error is TaskFailedError;
export function isCeleryTsError(error: unknown, code?: ErrorCode): error is CeleryTsError;
export function isCeleryTsError(error: unknown, code?: ErrorCode): error is CeleryTsError {
  return (
    typeof error === "object" &&
    error !== null &&
    (error as Record<symbol, unknown>)[ERROR_BRAND] === true &&
    (code === undefined || (error as CeleryTsError).code === code)
  );
}

export interface TaskFailure {
  taskId: string;
  /** The remote exception type, e.g. `ValueError` from Python or `TypeError` from TypeScript. */
  excType: string;
  excMessage: string;
  /** The Python module of the exception, or null for errors raised by celery-ts workers. */
  excModule: string | null;
  traceback: string | null;
}

/** `AsyncResult.get()` rejects with this when the task failed, on any worker, in any language. */
export class TaskFailedError extends CeleryTsError implements TaskFailure {
  readonly taskId: string;
  readonly excType: string;
  readonly excMessage: string;
  readonly excModule: string | null;
  readonly traceback: string | null;

  constructor(failure: TaskFailure) {
    super(
      "TASK_FAILED",
      `task ${failure.taskId} failed: ${failure.excType}: ${failure.excMessage}`,
      {
        pkg: "client",
      },
    );
    this.name = failure.excType;
    this.taskId = failure.taskId;
    this.excType = failure.excType;
    this.excMessage = failure.excMessage;
    this.excModule = failure.excModule;
    this.traceback = failure.traceback;
  }
}
