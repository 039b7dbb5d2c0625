import type { Rate } from "@celery-ts/core";
import { start } from "./setup/start.ts";
import { createWorkerState } from "./setup/state.ts";
import { stop } from "./shutdown/stop.ts";
import type { WorkerOptions } from "./setup/options.ts";

export type { WorkerOptions } from "./setup/options.ts";

export interface Worker {
  readonly hostname: string;
  /** Connects and starts consuming; resolves once consuming has begun. */
  start(): Promise<void>;
  /**
   * Stops taking messages, returns prefetched ones to the broker, waits up to `shutdownTimeout`
   * for running tasks, then requeues what is still running and closes connections it opened.
   */
  stop(): Promise<void>;
  /** Resolves when the worker has stopped. */
  readonly stopped: Promise<void>;
  /**
   * Changes a task's rate limit from now on, as Celery's `rate_limit` control command does:
   * `"10/s"`, `"100/m"`, `"1000/h"`, a number per second, or `null` for none. The scope and groups
   * stay as the task declared them. A CONFIG error for a bad rate or a task this worker lacks.
   */
  setRateLimit(task: string, rate: Rate): void;
}

/**
 * A worker: consumes queues, runs tasks, stores results, acknowledges after storing. The parts:
 * `setup/` (options, state, start, store), `pipeline/` (receive → rate gate → dispatch → execute
 * → finish / retry / revoke → settle), `results/` (what is stored), `shutdown/` (stop).
 */
export function createWorker(options: WorkerOptions): Worker {
  const state = createWorkerState(options);
  return {
    hostname: state.hostname,
    start: () => start(state),
    stop: () => stop(state),
    stopped: state.stopped,
    setRateLimit: (task, rate) => state.gate.setRateLimit(task, rate),
  };
}
