/**
 * A task's abort signal, made only when the task reads it: most tasks never do, and an
 * AbortController per task (and a listener on the worker's shutdown signal) was a good share of a
 * no-op task's allocations. The shutdown is listened to only once the signal exists; before, it is
 * looked at whenever the signal is made or aborted, so the first reason still wins: aborting
 * before the signal is read gives a signal already aborted, with the same reason.
 */
export class TaskAbort {
  readonly #shutdown: AbortSignal;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #ended = false;
  #onShutdown: (() => void) | undefined;

  /** `shutdown` aborts the task's signal too (a shutdown past its grace period), until `end`. */
  constructor(shutdown: AbortSignal) {
    this.#shutdown = shutdown;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#catchUp();
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
      else if (!this.#ended) {
        this.#onShutdown = () => this.abort(this.#shutdown.reason);
        this.#shutdown.addEventListener("abort", this.#onShutdown, { once: true });
      }
    }
    return this.#controller.signal;
  }

  /** Aborts once: later calls keep the first reason, as AbortController does. */
  abort(reason: unknown): void {
    this.#catchUp();
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  /** The run is over: a later shutdown leaves the signal alone. */
  end(): void {
    this.#catchUp();
    this.#ended = true;
    if (this.#onShutdown !== undefined) {
      this.#shutdown.removeEventListener("abort", this.#onShutdown);
    }
  }

  /** A shutdown that came while nobody listened counts from when it came: before anything now. */
  #catchUp(): void {
    if (!this.#aborted && !this.#ended && this.#shutdown.aborted) {
      this.#aborted = true;
      this.#reason = this.#shutdown.reason;
      this.#controller?.abort(this.#reason);
    }
  }
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
