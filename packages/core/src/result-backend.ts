import { CELERY_EXCEPTION_MODULES, exceptionArgs } from "./celery-exceptions.ts";
import { TaskFailedError } from "./errors.ts";
import type { ChordCounter, GroupStore } from "./canvas/chord-counter.ts";
import type { TaskState } from "./states.ts";

/** Celery's serialized exception, as stored in a FAILURE or RETRY result. */
export interface ExceptionInfo {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string | null;
}

/** A task's result as Celery stores it (field names as on the wire). */
export interface ResultMeta {
  status: TaskState;
  /** The return value, the exception (FAILURE, RETRY), or progress meta (custom states). */
  result: unknown;
  traceback: string | null;
  children: unknown[];
  /** ISO-8601 UTC without offset, as Celery writes it; null until the task is ready. */
  date_done: string | null;
  task_id: string;
  [extended: string]: unknown;
}

export interface StoreOptions {
  /**
   * Seconds after which the result is forgotten, as Celery's `result_expires`.
   * @default the backend's own expiry (one day)
   */
  expires?: number;
  /** The task message's `reply_to`: where Celery's rpc:// backend sends the result. */
  replyTo?: string;
  /** The task message's `correlation_id`, which an rpc:// reply carries. */
  correlationId?: string;
}

export interface WaitOptions {
  /** Seconds after which to reject with a `TIMEOUT` error (0 or more), as Celery's `get(timeout=)`. */
  timeout: number;
  signal?: AbortSignal;
}

/**
 * A result encoded by `ResultBackend.prepareStore()` for a broker that can write it with its
 * acknowledgement (`Delivery.ackWithResult()`). Opaque outside the driver package that made it:
 * its fields say where and what to write, for that package's transport to recognise.
 */
export interface PreparedStore {
  readonly taskId: string;
}

/** Where task states and results go. Every backend passes the same conformance suite. */
export interface ResultBackend {
  readonly name: string;
  /** Idempotent. Other methods connect on first use too. */
  connect(): Promise<void>;
  close(): Promise<void>;
  store(taskId: string, meta: ResultMeta, options?: StoreOptions): Promise<void>;
  /**
   * Optional: the same store, encoded (throwing as `store()` would on a value it cannot encode)
   * but not written, for `Delivery.ackWithResult()`: a broker on the same server writes it with
   * its acknowledgement in one round trip. Where no delivery carries it, call `store()`.
   */
  prepareStore?(taskId: string, meta: ResultMeta, options?: StoreOptions): PreparedStore;
  /** The stored meta, or undefined (PENDING: unknown, expired or forgotten). */
  get(taskId: string): Promise<ResultMeta | undefined>;
  /** Resolves with the meta once the task is in a ready state (SUCCESS, FAILURE, REVOKED). */
  waitFor(taskId: string, options: WaitOptions): Promise<ResultMeta>;
  forget(taskId: string): Promise<void>;
  /**
   * For backends that answer on the sender's own queue (rpc://): declares that queue and returns
   * its name, which a client sends as `reply_to`. Backends that store results leave it out.
   */
  replyTo?(): Promise<string>;
  /**
   * A native chord counter (Redis in Celery's layout, SQLite, memory). Without one, chords fall
   * back to Celery's polling `celery.chord_unlock` task; rpc:// refuses chords, as Celery does.
   */
  readonly chords?: ChordCounter;
  /** Saving and restoring group results (`GroupResult.save()`), where the backend can. */
  readonly groups?: GroupStore;
  /** Set by backends that cannot run chords at all (rpc://): the reason, shown to the user. */
  readonly noChords?: string;
}

/** `date_done` as Celery writes it: `datetime.utcnow().isoformat()`. */
export function celeryNow(date?: Date): string {
  const ms = date === undefined ? Date.now() : date.getTime();
  // Busy workers finish several tasks per millisecond: the last text is reused for them.
  if (ms !== lastNow.ms) {
    lastNow.text = `${new Date(ms).toISOString().slice(0, -1)}000`;
    lastNow.ms = ms;
  }
  return lastNow.text;
}

const lastNow = { ms: Number.NaN, text: "" };

// Errors named like Python's built-in exceptions are stored as those, so that a Python client's
// `except ValueError` catches them; errors named like Celery's own exceptions (TimeLimitExceeded,
// NotRegistered, ...) with Celery's module; other names become a class Python makes up on the spot.
const PYTHON_BUILTIN_EXCEPTIONS = new Set([
  "ArithmeticError",
  "AssertionError",
  "AttributeError",
  "ConnectionError",
  "Exception",
  "FileNotFoundError",
  "IndexError",
  "KeyError",
  "LookupError",
  "NotImplementedError",
  "OSError",
  "OverflowError",
  "PermissionError",
  "RuntimeError",
  "TimeoutError",
  "TypeError",
  "ValueError",
  "ZeroDivisionError",
]);

/** How a thrown value is stored, so a Python client's `.get()` raises a readable error too. */
export function exceptionInfo(error: unknown): ExceptionInfo {
  if (error instanceof TaskFailedError) {
    return {
      exc_type: error.excType,
      exc_message: [error.excMessage],
      exc_module: error.excModule,
    };
  }
  if (error instanceof Error) {
    const excType = error.name || "Error";
    const excModule = PYTHON_BUILTIN_EXCEPTIONS.has(excType)
      ? "builtins"
      : (CELERY_EXCEPTION_MODULES[excType] ?? null);
    return {
      exc_type: excType,
      exc_message: exceptionArgs(error) ?? [error.message],
      exc_module: excModule,
    };
  }
  return { exc_type: "Error", exc_message: [String(error)], exc_module: null };
}

/** The error a FAILURE (or REVOKED) meta stands for, from a TypeScript or a Python worker. */
export function failureFromMeta(meta: ResultMeta): TaskFailedError {
  const info = (meta.result ?? {}) as Partial<ExceptionInfo>;
  const args = Array.isArray(info.exc_message) ? info.exc_message : [info.exc_message ?? ""];
  return new TaskFailedError({
    taskId: meta.task_id,
    excType: typeof info.exc_type === "string" ? info.exc_type : meta.status,
    excMessage: pythonStr(args),
    excModule: typeof info.exc_module === "string" ? info.exc_module : null,
    traceback: meta.traceback,
  });
}

/** Roughly Python's `str(exc)`: "" for no arguments, the one argument itself, else the list. */
function pythonStr(args: unknown[]): string {
  if (args.length === 0) return "";
  const [first] = args;
  if (args.length === 1 && (typeof first !== "object" || first === null)) return String(first);
  return JSON.stringify(args, (_key, value: unknown) =>
    typeof value === "bigint" ? value.toString() : value,
  );
}
