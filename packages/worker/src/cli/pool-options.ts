import type { WorkerOptions } from "../worker.ts";

type PoolOptions = Pick<
  WorkerOptions,
  "concurrency" | "prefetch" | "shutdownTimeout" | "maxTasksPerChild" | "maxMemoryPerChild"
>;

export function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} takes a whole number of 1 or more, not "${value}"`);
  return n;
}

function nonNegative(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) {
    throw new Error(`--${name} takes a number of seconds, not "${value}"`);
  }
  return n;
}

/** The options of one worker process's pool the parsed flags ask for (only those given). */
export function poolWorkerOptions(values: {
  concurrency?: string | undefined;
  prefetch?: string | undefined;
  "shutdown-timeout"?: string | undefined;
  "max-tasks-per-child"?: string | undefined;
  "max-memory-per-child"?: string | undefined;
}): PoolOptions {
  const concurrency = positiveInt(values.concurrency, "concurrency");
  const prefetch = positiveInt(values.prefetch, "prefetch");
  const shutdownTimeout = nonNegative(values["shutdown-timeout"], "shutdown-timeout");
  const maxTasksPerChild = positiveInt(values["max-tasks-per-child"], "max-tasks-per-child");
  const maxMemoryPerChild = positiveInt(values["max-memory-per-child"], "max-memory-per-child");
  return {
    ...(concurrency !== undefined && { concurrency }),
    ...(prefetch !== undefined && { prefetch }),
    ...(shutdownTimeout !== undefined && { shutdownTimeout }),
    ...(maxTasksPerChild !== undefined && { maxTasksPerChild }),
    ...(maxMemoryPerChild !== undefined && { maxMemoryPerChild }),
  };
}
