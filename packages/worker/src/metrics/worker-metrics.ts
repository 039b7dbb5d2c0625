import { createServer, type Server } from "node:http";
import type { Logger, TaskMessage, Transport } from "@celery-ts/core";
import { Counter, Gauge, Histogram, Registry } from "./prometheus.ts";

/** Options of the worker's Prometheus endpoint. */
export interface MetricsOptions {
  /** Serve Prometheus text on this port (`GET /metrics`); off when absent. @default off */
  metricsPort?: number;
  /** The address the metrics endpoint listens on. @default "127.0.0.1" */
  metricsHost?: string;
}

/** What the metrics read from the worker when scraped. */
export interface MetricsSources {
  hostname: string;
  logger: Logger;
  /** Deliveries taken and not yet acknowledged or rejected (waiting, held for eta, running). */
  prefetched: () => number;
  prefetchLimit: () => number;
  running: () => number;
  queues: () => readonly string[];
  transport: () => Transport | undefined;
}

const STATES: Record<string, string> = {
  "task-received": "received",
  "task-succeeded": "succeeded",
  "task-failed": "failed",
  "task-retried": "retried",
  "task-rejected": "rejected",
  "task-revoked": "revoked",
};

/** Seconds: from a millisecond to ten minutes. */
const RUNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

export interface WorkerMetrics {
  /** Fed from the worker's task events (whether or not they are sent). */
  onTask(type: string, message: TaskMessage, fields: Record<string, unknown>): void;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The worker's metrics, in the order a scrape lists them: each made afresh per endpoint (a
 * metric holds its values).
 */
const METRICS = {
  tasks: () =>
    new Counter(
      "celery_ts_tasks_total",
      "Tasks by name and outcome (received, succeeded, failed, retried, rejected, revoked).",
    ),
  runtime: () =>
    new Histogram(
      "celery_ts_task_runtime_seconds",
      "Runtime of tasks that finished (succeeded or failed), by name.",
      RUNTIME_BUCKETS,
    ),
  prefetched: () =>
    new Gauge(
      "celery_ts_prefetch_in_use",
      "Messages taken from the broker and not yet acknowledged.",
    ),
  prefetchLimit: () =>
    new Gauge(
      "celery_ts_prefetch_limit",
      "The most messages the worker holds at once (running, waiting or being settled).",
    ),
  running: () => new Gauge("celery_ts_tasks_running", "Tasks running now."),
  depth: () =>
    new Gauge(
      "celery_ts_queue_depth",
      "Messages waiting in each consumed queue (where the transport can count them).",
    ),
  connectionLost: () =>
    new Counter(
      "celery_ts_broker_connection_lost_total",
      "Broker connections lost (by connection role), where the transport reports it.",
    ),
  reconnects: () =>
    new Counter(
      "celery_ts_broker_reconnects_total",
      "Broker connections recovered after a loss (by connection role).",
    ),
};

type MetricSet = { [K in keyof typeof METRICS]: ReturnType<(typeof METRICS)[K]> };

/** Makes every metric of `METRICS` and adds it to the registry, in the table's order. */
function registerMetrics(registry: Registry): MetricSet {
  const entries = Object.entries(METRICS).map(([key, make]) => [key, registry.add(make())]);
  return Object.fromEntries(entries) as MetricSet;
}

/** Starts the metrics endpoint. */
export async function startWorkerMetrics(
  options: MetricsOptions & { metricsPort: number },
  sources: MetricsSources,
): Promise<WorkerMetrics> {
  const registry = new Registry();
  const metrics = registerMetrics(registry);
  const started = new Map<string, number>();
  const stopListening = sources.transport()?.onConnectionEvent?.((event) =>
    (event.type === "lost" ? metrics.connectionLost : metrics.reconnects).inc({
      role: event.role,
    }),
  );
  const server = createServer((request, response) => {
    if (request.url !== "/metrics" && request.url !== "/") {
      response.writeHead(404).end("see /metrics\n");
      return;
    }
    scrape(registry, metrics, sources).then(
      (text) =>
        response
          .writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
          .end(text),
      (error: unknown) => response.writeHead(500).end(`${String(error)}\n`),
    );
  });
  const host = options.metricsHost ?? "127.0.0.1";
  const port = await listen(server, host, options.metricsPort);
  sources.logger.info("metrics endpoint listening", { url: `http://${host}:${port}/metrics` });
  return {
    url: `http://${host}:${port}/metrics`,
    onTask: (type, message, fields) => recordTask(metrics, started, type, message, fields),
    async close() {
      stopListening?.();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads the gauges from the worker (and the queue depths from the broker), then the text. */
async function scrape(
  registry: Registry,
  metrics: MetricSet,
  sources: MetricsSources,
): Promise<string> {
  metrics.prefetched.set(sources.prefetched());
  metrics.prefetchLimit.set(sources.prefetchLimit());
  metrics.running.set(sources.running());
  const transport = sources.transport();
  if (transport?.depth) {
    for (const queue of sources.queues()) {
      try {
        metrics.depth.set(await transport.depth(queue), { queue });
      } catch (error) {
        sources.logger.debug("metrics: could not count a queue", { queue, error: String(error) });
      }
    }
  }
  return registry.text();
}

/** Listens on host:port; resolves the port listened on (the one chosen, for port 0). */
async function listen(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(new Error(`the metrics endpoint cannot listen on ${host}:${port}: ${error.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === "object" && address ? address.port : port;
}

/** Counts a task event; a finished task's runtime goes to the histogram. */
function recordTask(
  metrics: MetricSet,
  started: Map<string, number>,
  type: string,
  message: TaskMessage,
  fields: Record<string, unknown>,
): void {
  const id = message.headers.id;
  const name = message.headers.task;
  if (type === "task-started") started.set(id, performance.now());
  const state = STATES[type];
  if (state) metrics.tasks.inc({ task: name, state });
  if (type === "task-succeeded" || type === "task-failed" || type === "task-revoked") {
    const begun = started.get(id);
    started.delete(id);
    const seconds =
      typeof fields.runtime === "number"
        ? fields.runtime
        : begun === undefined
          ? undefined
          : (performance.now() - begun) / 1000;
    if (seconds !== undefined && type !== "task-revoked")
      metrics.runtime.observe(seconds, { task: name });
  }
}
