const SIGNAL_BRAND = Symbol.for("celery-ts.task-signal");

type SignalKind = "retry" | "reject" | "ignore" | "unrecoverable";

/** Errors a task throws to steer the worker rather than to fail. */
abstract class TaskSignal extends Error {
  abstract readonly kind: SignalKind;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    Object.defineProperty(this, SIGNAL_BRAND, { value: true });
  }
}

export interface RetryOptions {
  /** Seconds until the retry; default from the task's retry policy. */
  countdown?: number;
  eta?: Date;
  /** The error that caused the retry, stored with the RETRY state and raised when retries run out. */
  error?: unknown;
  /** Overrides the task's `retry.maxRetries` for this call. */
  maxRetries?: number;
}

/** Thrown by `currentTask().retry()`: run the task again later. */
export class RetryTask extends TaskSignal {
  readonly kind = "retry";
  readonly options: RetryOptions;
  constructor(options: RetryOptions = {}) {
    super(`retry requested${options.error instanceof Error ? `: ${options.error.message}` : ""}`, {
      cause: options.error,
    });
    this.name = "Retry";
    this.options = options;
  }
}

/** Reject the message: dead-letter it (or requeue it) without storing a result. */
export class RejectTask extends TaskSignal {
  readonly kind = "reject";
  readonly requeue: boolean;
  constructor(reason: string, options: { requeue?: boolean } = {}) {
    super(reason);
    this.name = "Reject";
    this.requeue = options.requeue ?? false;
  }
}

/** Acknowledge the message and store nothing. */
export class IgnoreTask extends TaskSignal {
  readonly kind = "ignore";
  constructor(reason = "ignored") {
    super(reason);
    this.name = "Ignore";
  }
}

/** Fail at once, without the automatic retries `autoRetryFor` would give. */
export class UnrecoverableError extends TaskSignal {
  readonly kind = "unrecoverable";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnrecoverableError";
  }
}

export type AnyTaskSignal = RetryTask | RejectTask | IgnoreTask | UnrecoverableError;

/** Recognizes task signals across duplicate installs. */
export function asTaskSignal(error: unknown): AnyTaskSignal | undefined {
  return typeof error === "object" &&
    error !== null &&
    (error as Record<symbol, unknown>)[SIGNAL_BRAND] === true
    ? (error as AnyTaskSignal)
    : undefined;
}
