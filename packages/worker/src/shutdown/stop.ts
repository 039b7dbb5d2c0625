import { CeleryTsError } from "@celery-ts/core";
import { settle, settleNow } from "../pipeline/settle.ts";
import type { WorkerState } from "../setup/state.ts";

/**
 * Stops the worker once, however often it is called: takes no more messages, requeues those not
 * started, gives running tasks `graceMs` (retiring waits for them however long), then closes.
 */
export function stop(
  state: WorkerState,
  graceMs = (state.options.shutdownTimeout ?? 30) * 1000,
): Promise<void> {
  state.stopping ??= (async () => {
    state.closing = true;
    state.consuming.abort();
    await state.restarting;
    await state.consumeLoop;
    await requeueWaiting(state);
    await drainRunning(state, graceMs);
    await closeAll(state);
    state.resolveStopped();
  })();
  return state.stopping;
}

/** Messages taken ahead (ready, held for their eta, held by the rate gate) go back to the broker. */
async function requeueWaiting(state: WorkerState): Promise<void> {
  const { ready, held, gate } = state;
  const waiting = [...ready.splice(0), ...held.values(), ...gate.drain()];
  held.forEach((_job, timer) => timer.clear());
  held.clear();
  await Promise.all(waiting.map((job) => settle(state, job.delivery, "requeue")));
}

/** Waits for running tasks; those still running after `graceMs` are abandoned and requeued. */
async function drainRunning(state: WorkerState, graceMs: number): Promise<void> {
  const { active, abandoned, log } = state;
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<"timeout">((resolve) => {
    if (Number.isFinite(graceMs)) timer = setTimeout(resolve, graceMs, "timeout");
  });
  const drained = await Promise.race([
    Promise.all(state.running).then(() => "done" as const),
    graceOver,
  ]);
  clearTimeout(timer);
  if (drained !== "timeout") return;
  log.warn(`${active.size} task(s) still running after the shutdown timeout; requeued`);
  // Abandoned before the abort: a task that returns on it must not settle or store anything.
  const stillRunning = [...active];
  for (const delivery of stillRunning) abandoned.add(delivery);
  state.shutdown.abort(
    new CeleryTsError("CLOSED", "the worker is shutting down", { pkg: "worker" }),
  );
  await Promise.all(stillRunning.map((delivery) => settleNow(log, delivery, "requeue")));
}

/** Stops control and metrics, and closes the connections the worker opened itself. */
async function closeAll(state: WorkerState): Promise<void> {
  const { options, log, hostname } = state;
  // What start() was opening when stop() came: closed below once it is open (or failed).
  await state.opening?.catch(() => undefined);
  await state.control.stop();
  await state.metrics?.close();
  // Connections the worker opened from URLs are its own to close; objects belong to the caller.
  if (typeof options.broker === "string") await state.transport?.close();
  if (typeof options.backend === "string") await state.backend?.close();
  if (typeof options.store !== "object") await state.coordination?.close();
  log.info("worker stopped", { hostname });
  await state.lifecycle.workerShutdown(hostname);
}
