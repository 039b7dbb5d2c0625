import { resolveBackend, resolveTransport } from "@celery-ts/core";
import { connectOnStartup } from "../internal/connect-on-startup.ts";
import { startWorkerMetrics } from "../metrics/worker-metrics.ts";
import { startConsuming } from "../pipeline/consume.ts";
import { openStore } from "./open-store.ts";
import { redactUrl } from "./options.ts";
import type { WorkerState } from "./state.ts";

/**
 * Connects the broker and the backend (retrying at startup unless told not to), opens the store,
 * starts control and metrics, then consumes; resolves once every queue's consumer is live (or
 * at once when `stop()` came first).
 */
export async function start(state: WorkerState): Promise<void> {
  const { options, log, hostname, control } = state;
  // Built from a URL, the connections report their losses and recoveries to the worker's log.
  const transport = await resolveTransport(options.broker, { logger: log });
  state.transport = transport;
  state.backend =
    options.backend === undefined
      ? undefined
      : await resolveBackend(options.backend, { logger: log });
  if (!(await connectAll(state))) return;
  state.coordination = await openStore(options, state.gate.fleetTasks);
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

/** The broker, then the backend; false when the worker was stopped while it waited for them. */
async function connectAll(state: WorkerState): Promise<boolean> {
  const { options, log, transport, backend } = state;
  const retry = options.brokerConnectionRetryOnStartup ?? true;
  const signal = state.consuming.signal;
  const where = (given: unknown, name: string, kind: string): string =>
    typeof given === "string" ? `at ${redactUrl(given)}` : `(the ${name} ${kind} given)`;
  const connected =
    (await connectOnStartup({
      what: "broker",
      where: where(options.broker, transport!.name, "transport"),
      connect: () => transport!.connect(),
      log,
      retry,
      signal,
    })) &&
    (backend === undefined ||
      (await connectOnStartup({
        what: "result backend",
        where: where(options.backend, backend.name, "result backend"),
        connect: () => backend.connect(),
        log,
        retry,
        signal,
      })));
  return connected && !state.closing;
}
