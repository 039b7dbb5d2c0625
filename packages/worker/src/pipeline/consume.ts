import type { Delivery } from "@celery-ts/core";
import type { WorkerState } from "../setup/state.ts";
import { stop } from "../shutdown/stop.ts";
import { receive } from "./receive.ts";

/** Starts the consume loop on the worker's queues; an error in it stops the worker. */
export function startConsuming(state: WorkerState): void {
  if (state.closing) return;
  const onDelivery = (delivery: Delivery): void => receive(state, delivery);
  state.consumeLoop = state
    .transport!.consume(state.queues, onDelivery, state.flow)
    .catch((error: unknown) => {
      state.log.error("consuming stopped on an error; stopping the worker", {
        error: String(error),
      });
      void stop(state);
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
    startConsuming(state);
  });
}
