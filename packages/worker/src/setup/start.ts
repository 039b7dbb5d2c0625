import { resolveBackend, resolveTransport } from "@celery-ts/core";
import { startWorkerMetrics } from "../metrics/worker-metrics.ts";
import { startConsuming } from "../pipeline/consume.ts";
import { openStore } from "./open-store.ts";
import type { WorkerState } from "./state.ts";

/** Connects the broker, backend and store, starts control and metrics, then consumes. */
export async function start(state: WorkerState): Promise<void> {
  const { options, log, hostname, control } = state;
  // Built from a URL, the connections report their losses and recoveries to the worker's log.
  const transport = await resolveTransport(options.broker, { logger: log });
  state.transport = transport;
  state.backend =
    options.backend === undefined
      ? undefined
      : await resolveBackend(options.backend, { logger: log });
  await transport.connect();
  await state.backend?.connect();
  state.coordination = await openStore(options, state.gate.fleetTasks);
  log.info("worker ready", {
    hostname,
    transport: transport.name,
    backend: state.backend?.name ?? "none",
    queues: state.queues,
    concurrency: state.concurrency,
    tasks: [...state.registry.keys()],
  });
  await control.start(options.broker);
  if (options.metricsPort !== undefined) {
    const { ready, held, active, flow } = state;
    state.metrics = await startWorkerMetrics(
      { ...options, metricsPort: options.metricsPort },
      {
        hostname,
        logger: log,
        prefetched: () => ready.length + held.size + active.size,
        prefetchLimit: () => flow.prefetch,
        running: () => active.size,
        queues: () => state.queues,
        transport: () => state.transport,
      },
    );
    control.events.taps.push(state.metrics.onTask);
  }
  startConsuming(state);
  await state.lifecycle.workerReady(hostname, state.queues);
}
