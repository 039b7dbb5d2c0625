/**
 * A task's abort signal, made only when the task reads it: most tasks never do, and an
 * AbortController per task was a good share of a no-op task's allocations. Aborting before the
 * signal is read gives a signal already aborted, with the same reason.
 */
export class TaskAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Aborts once: later calls keep the first reason, as AbortController does. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** The running tasks to abort when a shutdown signal fires: one listener per signal, not per task. */
const watched = new WeakMap<AbortSignal, Set<TaskAbort>>();

/** Aborts `abort` (with the signal's reason) when `shutdown` fires, until `forgetOnShutdown`. */
export function abortOnShutdown(shutdown: AbortSignal, abort: TaskAbort): void {
  if (shutdown.aborted) {
    abort.abort(shutdown.reason);
    return;
  }
  let tasks = watched.get(shutdown);
  if (tasks === undefined) {
    const set = new Set<TaskAbort>();
    tasks = set;
    watched.set(shutdown, set);
    shutdown.addEventListener(
      "abort",
      () => {
        for (const task of set) task.abort(shutdown.reason);
        set.clear();
      },
      { once: true },
    );
  }
  tasks.add(abort);
}

/** The task ended: a later shutdown leaves it alone. */
export function forgetOnShutdown(shutdown: AbortSignal, abort: TaskAbort): void {
  watched.get(shutdown)?.delete(abort);
}

/**
 * Revoke with terminate, for one run: `terminate` (handed to the request tracker) aborts the
 * task's signal and stops waiting for it; `terminated` tells the pipeline afterwards.
 */
export class Terminator {
  #reason: Error | undefined;
  #listener: ((reason: Error) => void) | undefined;

  readonly terminate = (reason: Error): void => {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#listener?.(reason);
  };

  get terminated(): boolean {
    return this.#reason !== undefined;
  }

  /** For the run: called at once when already terminated. */
  listen(listener: (reason: Error) => void): void {
    this.#listener = listener;
    if (this.#reason !== undefined) listener(this.#reason);
  }
}
