import type { Delivery } from "@celery-ts/core";
import type { WorkerState } from "../setup/state.ts";
import { stop } from "../shutdown/stop.ts";
import { receive } from "./receive.ts";

/** Seconds without `onConsuming` after which the worker says that it is still waiting. */
const SLOW_START_SECONDS = 15;

/**
 * Starts the consume loop on the worker's queues; an error in it stops the worker. Resolves once
 * the transport says every queue's consumer is live (`onConsuming`), or when the loop ended
 * first: then with the loop's error, if it failed.
 */
export function startConsuming(state: WorkerState): Promise<void> {
  if (state.closing) return Promise.resolve();
  const { log, transport } = state;
  let live!: () => void;
  const consuming = new Promise<void>((resolve) => (live = resolve));
  // A transport that does not say it reports `onConsuming` (one written before it existed) may
  // never call it: then consuming counts as live once consume() has started.
  const reports = transport!.capabilities.reportsConsuming === true;
  if (reports) state.flow.onConsuming = live;
  else delete state.flow.onConsuming;
  let failure: { error: unknown } | undefined;
  const onDelivery = (delivery: Delivery): void => receive(state, delivery);
  state.consumeLoop = transport!
    .consume(state.queues, onDelivery, state.flow)
    .catch((error: unknown) => {
      failure = { error };
      log.error("consuming stopped on an error; stopping the worker", { error: String(error) });
      void stop(state);
    });
  if (!reports) {
    log.debug(
      `the ${transport!.name} transport does not report when its consumer is live ` +
        "(capabilities.reportsConsuming); start() resolves once consume() has started",
    );
    setImmediate(live);
  }
  // Not silent when a broker keeps the consumer from starting (or a transport never says it did).
  const slow = setTimeout(() => {
    log.warn(
      `consuming has not started after ${SLOW_START_SECONDS} s on the ${transport!.name} ` +
        "transport; still waiting (is the broker reachable?)",
      { queues: state.queues },
    );
  }, SLOW_START_SECONDS * 1000);
  slow.unref();
  return Promise.race([consuming, state.consumeLoop]).then(() => {
    clearTimeout(slow);
    if (failure) throw failure.error;
  });
}

/** add_consumer / cancel_consumer: the loop stops and starts again on the new queues. */
export function restartConsuming(state: WorkerState): void {
  state.restarting = state.restarting.then(async () => {
    if (state.closing) return;
    state.consuming.abort();
    await state.consumeLoop;
    state.consuming = new AbortController();
    state.flow.signal = state.consuming.signal;
    state.log.info("consuming from new queues", { queues: state.queues });
    // The loop's errors stop the worker (logged there); whether it went live is not awaited.
    startConsuming(state).catch(() => undefined);
  });
}
