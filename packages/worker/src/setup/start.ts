import { resolveBackend, resolveTransport } from "@celery-ts/core";
import { connectAllOnStartup, type StartupPart } from "../internal/connect-on-startup.ts";
import { startWorkerMetrics } from "../metrics/worker-metrics.ts";
import { startConsuming } from "../pipeline/consume.ts";
import { openStore } from "./open-store.ts";
import type { WorkerState } from "./state.ts";

/**
 * Connects the broker and the backend (retrying at startup unless told not to), opens the store,
 * starts control and metrics, then consumes; resolves once every queue's consumer is live (or
 * at once when `stop()` came first).
 */
export async function start(state: WorkerState): Promise<void> {
  const { options, log, hostname } = state;
  // Built from a URL, the connections report their losses and recoveries to the worker's log.
  const transport = await resolveTransport(options.broker, { logger: log });
  state.transport = transport;
  state.backend =
    options.backend === undefined
      ? undefined
      : await resolveBackend(options.backend, { logger: log });
  if (!(await connectAll(state))) return;
  // Set at once (connectAll saw no stop() yet): a stop() from now on waits for it, then closes.
  state.opening = openServices(state);
  await state.opening;
  if (state.closing) return;
  await startConsuming(state);
  if (state.closing) return;
  log.info("worker ready", {
    hostname,
    transport: transport.name,
    backend: state.backend?.name ?? "none",
    queues: state.queues,
    concurrency: state.concurrency,
    tasks: [...state.registry.keys()],
  });
  await state.lifecycle.workerReady(hostname, state.queues);
}

/** The coordination store, remote control and metrics; each skipped once stop() was called. */
async function openServices(state: WorkerState): Promise<void> {
  const { options, hostname, control, log } = state;
  state.coordination = await openStore(options, state.gate.fleetTasks);
  if (state.closing) return;
  await control.start(options.broker);
  if (state.closing) return;
  if (options.metricsPort !== undefined) {
    const { ready, held, active, flow } = state;
    state.metrics = await startWorkerMetrics(
      { ...options, metricsPort: options.metricsPort },
      {
        hostname,
        logger: log,
        prefetched: () => ready.length + held.size + active.size,
        prefetchLimit: () => flow.prefetch,
        running: () => state.busy,
        queues: () => state.queues,
        transport: () => state.transport,
      },
    );
    control.events.taps.push(state.metrics.onTask);
  }
}

/** The broker, then the backend; false when the worker was stopped while it waited for them. */
async function connectAll(state: WorkerState): Promise<boolean> {
  const { options, log, transport, backend } = state;
  const parts: StartupPart[] = [
    {
      what: "broker",
      given: options.broker,
      name: `${transport!.name} transport`,
      connect: () => transport!.connect(),
    },
  ];
  if (backend) {
    parts.push({
      what: "result backend",
      given: options.backend,
      name: `${backend.name} result backend`,
      connect: () => backend.connect(),
    });
  }
  const retry = options.brokerConnectionRetryOnStartup ?? true;
  const connected = await connectAllOnStartup(parts, {
    log,
    retry,
    signal: state.consuming.signal,
  });
  return connected && !state.closing;
}
