import type { Logger, TaskDefinition } from "@celery-ts/core";
import type { WorkerInternals } from "../control/worker-control.ts";
import { dispatch } from "../pipeline/dispatch.ts";
import { restartConsuming } from "../pipeline/consume.ts";
import { stop } from "../shutdown/stop.ts";
import { defaultPrefetch, redactUrl } from "./options.ts";
import type { WorkerState } from "./state.ts";

/** What remote control may read and turn on a worker: closures over its state. */
export function controlInternals(
  worker: () => WorkerState,
  fixed: {
    hostname: string;
    registry: ReadonlyMap<string, TaskDefinition>;
    log: Logger;
    startedAt: number;
  },
): WorkerInternals {
  return {
    hostname: fixed.hostname,
    registry: fixed.registry,
    logger: fixed.log,
    startedAt: fixed.startedAt,
    concurrency: () => worker().concurrency,
    setConcurrency: (n) => {
      const state = worker();
      // As Celery's pool_grow/shrink move the prefetch with the pool: by the change of the
      // default prefetch, or by n where the user set one. Moved, not set: the prefetch also holds
      // temporary additions (messages held for their ETA, the rate gate's), undone later.
      state.flow.prefetch +=
        state.options.prefetch === undefined
          ? defaultPrefetch(n) - defaultPrefetch(state.concurrency)
          : n - state.concurrency;
      state.concurrency = n;
      dispatch(state);
    },
    prefetch: () => worker().flow.prefetch,
    queues: () => worker().queues,
    setQueues: (next) => {
      const state = worker();
      state.queues = [...next];
      restartConsuming(state);
    },
    setRateLimit: (task, rate) => worker().gate.setRateLimit(task, rate),
    shutdown: () => void stop(worker()),
    describe: () => {
      const { options, transport } = worker();
      return {
        transport: transport?.name ?? "unknown",
        ...(typeof options.broker === "string" && { broker: redactUrl(options.broker) }),
        ...(typeof options.backend === "string" && { backend: redactUrl(options.backend) }),
      };
    },
  };
}
