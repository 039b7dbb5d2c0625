import {
  TaskState,
  failureFromMeta,
  isCeleryTsError,
  isReadyState,
  type ResultBackend,
  type ResultMeta,
  type TaskFailedError,
} from "@celery-ts/core";
import { resultFromTuple, type AnyResult, type ResultSource } from "./canvas/group-result.ts";
import type { RevokeOptions } from "./control.ts";
import { clientError } from "./internal/errors.ts";

export interface GetOptions {
  /**
   * Seconds to wait for the task to finish; then `get()` rejects with a `TIMEOUT` error.
   * @default none: wait until the task is ready, however long that takes
   */
  timeout?: number;
  /**
   * When the task failed or was revoked, reject (true), or resolve with a `TaskFailedError` that
   * describes the stored exception (false).
   * @default true
   */
  propagate?: boolean;
  /** Aborting stops waiting: `get()` rejects with the signal's reason. @default none */
  signal?: AbortSignal;
}

/**
 * A handle on a sent task's state and result, read from the client's result backend. Every method
 * rejects with a `NO_RESULT_BACKEND` error when the client has no backend.
 */
export interface AsyncResult<R> {
  readonly id: string;
  /** The task's name when this client sent it; undefined for `client.asyncResult(id)`. */
  readonly name: string | undefined;
  /**
   * The result this one follows, when this client sent the canvas: a chain's previous step, a
   * chord body's header group. Null otherwise.
   */
  readonly parent: AnyResult | null;
  /**
   * What the task started, as its worker stored it (Celery's `children`): its callbacks and its
   * chain's next step. Empty while the task is not done.
   */
  children(): Promise<AnyResult[]>;
  /** The stored state; PENDING when the backend knows nothing (queued, unknown or forgotten). */
  status(): Promise<TaskState>;
  /** True once the task is SUCCESS, FAILURE or REVOKED: its state will not change again. */
  ready(): Promise<boolean>;
  successful(): Promise<boolean>;
  failed(): Promise<boolean>;
  /**
   * Waits for the task to finish and resolves with its result. Rejects with a `TaskFailedError`
   * (the remote exception's type, message and traceback, from any worker, Python included) when it
   * failed, a `TASK_REVOKED` error when it was revoked, a `TIMEOUT` error after `timeout` seconds.
   */
  get(options?: GetOptions & { propagate?: true }): Promise<R>;
  /** With `propagate: false`, a failure resolves with the `TaskFailedError` instead. */
  get(options: GetOptions): Promise<R | TaskFailedError>;
  /** The stored meta as it is, e.g. a custom PROGRESS state's meta; undefined while PENDING. */
  info(): Promise<ResultMeta | undefined>;
  /**
   * The stored `result` field without waiting: the return value (SUCCESS), the exception info
   * (FAILURE, RETRY), the meta of a custom state; undefined while PENDING.
   */
  result(): Promise<unknown>;
  /** The remote traceback of a failed task, or null. */
  traceback(): Promise<string | null>;
  /** Deletes the stored result; the state reads PENDING afterwards. */
  forget(): Promise<void>;
  /** Celery's result tuple, `[[id, parent], null]`. */
  asTuple(): unknown;
  /**
   * Revokes the task on every worker (Python ones too): it is stored REVOKED and never runs; with
   * `terminate`, a running one is stopped. Workers started later learn it from the others.
   */
  revoke(options?: RevokeOptions): Promise<void>;
}

/** setTimeout's longest delay; longer ones fire at once, so longer waits are made in steps. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * @param source where the result is read (`backend` resolves the client's result backend, or
 * rejects: no backend, client closed) and the control channel `revoke()` uses.
 */
export function createAsyncResult<R>(
  id: string,
  name: string | undefined,
  source: ResultSource,
  parent: AnyResult | null = null,
): AsyncResult<R> {
  return new BackendResult<R>(id, name, source, parent);
}

class BackendResult<R> implements AsyncResult<R> {
  readonly id: string;
  readonly name: string | undefined;
  readonly parent: AnyResult | null;
  readonly #source: ResultSource;
  readonly #backend: () => Promise<ResultBackend>;

  constructor(
    id: string,
    name: string | undefined,
    source: ResultSource,
    parent: AnyResult | null,
  ) {
    this.id = id;
    this.name = name;
    this.#source = source;
    this.#backend = source.backend;
    this.parent = parent;
  }

  asTuple(): unknown {
    return [[this.id, this.parent ? this.parent.asTuple() : null], null];
  }

  async children(): Promise<AnyResult[]> {
    const children = (await this.info())?.children ?? [];
    return children.map((tuple) => resultFromTuple(tuple, this.#source));
  }

  async revoke(options: RevokeOptions = {}): Promise<void> {
    const control = this.#source.control;
    if (!control) {
      throw clientError("CONFIG", `cannot revoke ${this.#label}: this result has no client`);
    }
    await control().revoke(this.id, options);
  }

  /** `tasks.add[<id>]`, as Celery names a task in its logs. */
  get #label(): string {
    return this.name === undefined ? this.id : `${this.name}[${this.id}]`;
  }

  async status(): Promise<TaskState> {
    return (await this.info())?.status ?? TaskState.PENDING;
  }

  async ready(): Promise<boolean> {
    return isReadyState(await this.status());
  }

  async successful(): Promise<boolean> {
    return (await this.status()) === TaskState.SUCCESS;
  }

  async failed(): Promise<boolean> {
    return (await this.status()) === TaskState.FAILURE;
  }

  get(options?: GetOptions & { propagate?: true }): Promise<R>;
  get(options: GetOptions): Promise<R | TaskFailedError>;
  async get(options: GetOptions = {}): Promise<R | TaskFailedError> {
    const meta = await this.#waitFor(options);
    if (meta.status === TaskState.SUCCESS) return meta.result as R;
    const failure = failureFromMeta(meta);
    if (options.propagate === false) return failure;
    if (meta.status === TaskState.REVOKED) {
      const reason = failure.excMessage ? `: ${failure.excMessage}` : " (cancelled or expired)";
      throw clientError("TASK_REVOKED", `task ${this.#label} was revoked${reason}`, {
        cause: failure,
      });
    }
    throw failure;
  }

  async info(): Promise<ResultMeta | undefined> {
    return (await this.#backend()).get(this.id);
  }

  async result(): Promise<unknown> {
    return (await this.info())?.result;
  }

  async traceback(): Promise<string | null> {
    return (await this.info())?.traceback ?? null;
  }

  async forget(): Promise<void> {
    await (await this.#backend()).forget(this.id);
  }

  async #waitFor({ timeout = Infinity, signal }: GetOptions): Promise<ResultMeta> {
    if (!(timeout >= 0)) {
      throw clientError(
        "CONFIG",
        `get(): timeout must be a number of seconds >= 0, got ${timeout}`,
      );
    }
    const backend = await this.#backend();
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const timeoutMs = Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS);
      try {
        return await backend.waitFor(this.id, {
          timeout: timeoutMs / 1000,
          ...(signal && { signal }),
        });
      } catch (error) {
        if (!isCeleryTsError(error, "TIMEOUT")) throw error;
        // Only a wait cut short by the timer's cap goes round again; a real timeout is reported.
        if (timeoutMs < MAX_TIMER_MS) {
          throw clientError(
            "TIMEOUT",
            `task ${this.#label} did not finish within ${timeout} s ` +
              "(is a worker running and consuming its queue?)",
            { cause: error, retryable: true },
          );
        }
      }
    }
  }
}
