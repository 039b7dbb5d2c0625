import type { WorkerState } from "../setup/state.ts";
import { execute } from "./execute.ts";
import { settle } from "./settle.ts";

/** Starts ready jobs while a slot is free, unless the worker is shutting down or retiring. */
export function dispatch(state: WorkerState): void {
  const { ready, running, active, recycler, shutdown, log } = state;
  while (
    running.size < state.concurrency &&
    ready.length > 0 &&
    !shutdown.signal.aborted &&
    !recycler.retiring
  ) {
    const job = ready.shift()!;
    active.add(job.delivery);
    recycler.taskStarted();
    const execution = execute(state, job).catch((error: unknown) => {
      log.error("unexpected error while handling a task; it will be redelivered", {
        id: job.message.headers.id,
        error: String(error),
      });
      return settle(state, job.delivery, "requeue");
    });
    running.add(execution);
    void execution.finally(() => {
      state.control.requests.finished(job.message.headers.id);
      running.delete(execution);
      active.delete(job.delivery);
      recycler.taskFinished();
      dispatch(state);
    });
  }
}
