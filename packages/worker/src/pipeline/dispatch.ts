import type { WorkerState } from "../setup/state.ts";
import { execute } from "./execute.ts";
import { settle } from "./settle.ts";

/**
 * Starts ready jobs while a slot is free, unless the worker is shutting down or retiring. A slot
 * is held while the task's own code runs; storing its result and acknowledging its message go on
 * after the slot is freed (still tracked in `running`, so shutdown waits for them), bounded by
 * the prefetch: a message counts against it until it is settled.
 */
export function dispatch(state: WorkerState): void {
  const { ready, running, runningIds, active, recycler, shutdown, log } = state;
  while (
    state.busy < state.concurrency &&
    ready.length > 0 &&
    !shutdown.signal.aborted &&
    !recycler.retiring
  ) {
    const job = ready.shift()!;
    active.add(job.delivery);
    recycler.taskStarted();
    state.busy++;
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      state.busy--;
      // Memory is checked once the task's code is done, before its slot takes the next task.
      recycler.taskFinished();
      dispatch(state);
    };
    const { id } = job.message.headers;
    // A redelivered copy of a task whose earlier run is still storing its result starts after
    // it, so that the duplicate check sees that result (the slot was freed before the store).
    const earlier = job.delivery.redelivered ? runningIds.get(id) : undefined;
    // One async frame for the run, its error and its clean-up: a catch() and a finally() chained
    // on the run made several promises and closures more per task.
    const runJob = async (): Promise<void> => {
      try {
        if (earlier) await earlier;
        await execute(state, job, release);
      } catch (error) {
        log.error("unexpected error while handling a task; it will be redelivered", {
          id,
          error: String(error),
        });
        await settle(state, job.delivery, "requeue");
      } finally {
        // Reached after the first await at the earliest: `execution` is set by then.
        state.control.requests.finished(id);
        running.delete(execution);
        if (runningIds.get(id) === execution) runningIds.delete(id);
        active.delete(job.delivery);
        release();
      }
    };
    const execution = runJob();
    running.add(execution);
    runningIds.set(id, execution);
  }
}
