import type { ParseArgsConfig } from "node:util";
import type { MetricsOptions } from "../metrics/worker-metrics.ts";

/** `celery-ts worker` options of the Prometheus endpoint. */
export const METRICS_OPTIONS = {
  "metrics-port": { type: "string" },
  "metrics-host": { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export const METRICS_USAGE = `      --metrics-port <n>      serve Prometheus metrics on http://127.0.0.1:<n>/metrics [default off]
      --metrics-host <addr>   address of the metrics endpoint [default 127.0.0.1]`;

/**
 * The worker options the parsed flags ask for. Each process counts for itself, so a port serves
 * one process: with more than one, this refuses.
 */
export function metricsWorkerOptions(
  values: Record<string, string | boolean | undefined>,
  processes: number,
): MetricsOptions {
  const raw = values["metrics-port"];
  if (typeof raw !== "string") return {};
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--metrics-port takes a port number, not "${raw}"`);
  if (processes > 1) {
    throw new Error(
      "--metrics-port serves one process: add --processes 1 (and run one worker per port)",
    );
  }
  return {
    metricsPort: port,
    ...(typeof values["metrics-host"] === "string" && { metricsHost: values["metrics-host"] }),
  };
}
