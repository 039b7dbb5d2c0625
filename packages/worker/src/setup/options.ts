import { hostname as osHostname } from "node:os";
import {
  CeleryTsError,
  silentLogger,
  type AnyTaskDefinition,
  type CoordinationStore,
  type Logger,
  type ResultBackend,
  type Signals,
  type TaskDefinition,
  type Transport,
} from "@celery-ts/core";
import type { RecycleInfo } from "../flow/recycle.ts";
import type { ControlOptions } from "../control/worker-control.ts";
import type { MetricsOptions } from "../metrics/worker-metrics.ts";

export interface WorkerOptions extends ControlOptions, MetricsOptions {
  /** A transport, or a broker URL such as `sqlite:///queue.db`. */
  broker: Transport | string;
  /** A result backend or its URL. Without one, results are not stored. */
  backend?: ResultBackend | string;
  /** The tasks this worker runs. */
  tasks: Iterable<AnyTaskDefinition>;
  /**
   * Celery's `broker_connection_retry_on_startup`: when the broker (or the result backend) cannot
   * be reached at `start()`, keep trying with backoff (1 s doubling up to 10 s), logging each
   * failed attempt with the URL and the wait before the next, until it answers or `stop()` is
   * called. `false` fails at once: `start()` rejects with a `CONNECTION` error. Errors that waiting
   * cannot fix (wrong credentials, a bad URL) fail at once either way.
   * @default true
   */
  brokerConnectionRetryOnStartup?: boolean;
  /** Queues to consume. @default ["celery"] */
  queues?: string[];
  /** Tasks run at once in this process (async). @default 50 (measured in `pnpm bench`) */
  concurrency?: number;
  /**
   * Messages this process holds at once: running, waiting for a slot, or being stored and
   * acknowledged. Above `concurrency`, the rest are taken ahead, so that a freed slot starts its
   * next task without a round trip to the broker. @default concurrency + a quarter of it, at least 4
   */
  prefetch?: number;
  /** Seconds that running tasks get to finish after `stop()`. @default 30 */
  shutdownTimeout?: number;
  /** Messages with a larger body are rejected as malformed. @default 10 MiB */
  maxBodyBytes?: number;
  /** Shown in logs. @default `celery-ts@<hostname>` */
  hostname?: string;
  /** @default silent */
  logger?: Logger;
  /** Where the worker sends its lifecycle signals. @default the process-wide `signals` */
  signals?: Signals;
  /**
   * Celery's `--max-tasks-per-child`: after starting this many tasks the worker retires: it takes
   * no more, returns the messages it took ahead, lets running tasks finish (however long they
   * take), acknowledges them and stops. @default no limit
   */
  maxTasksPerChild?: number;
  /**
   * Celery's `--max-memory-per-child`, in KiB: when a task finishes with the process's resident
   * memory above this, the worker retires as with `maxTasksPerChild`. @default no limit
   */
  maxMemoryPerChild?: number;
  /** Called when the worker starts retiring (see `maxTasksPerChild`), e.g. to tell a supervisor. */
  onRetire?: (info: RecycleInfo) => void;
  /**
   * The coordination store for fleet-wide rate limits (`rateLimit: { scope: "fleet" }`) and for
   * the claims of beat ticks (`celery_ts_once`: a tick a beat failover sent twice runs once): an
   * object or a URL. Opened when a task has such a limit, or on the first claimed tick.
   * @default the broker's URL (Redis and SQLite brokers have a store)
   */
  store?: CoordinationStore | string;
}

/**
 * The default prefetch: the slots, and a quarter more taken ahead (at least 4), so that a slot
 * freed while the last result is stored and acknowledged starts its next task at once, and the
 * acknowledgements and takes of several tasks share a round trip even at a low concurrency.
 */
export const defaultPrefetch = (concurrency: number): number =>
  concurrency + Math.max(4, Math.ceil(concurrency / 4));

/** The options with their defaults applied. */
export interface ResolvedOptions {
  log: Logger;
  hostname: string;
  concurrency: number;
  prefetch: number;
  queues: string[];
}

export function resolveOptions(options: WorkerOptions): ResolvedOptions {
  const concurrency = options.concurrency ?? 50;
  return {
    log: options.logger ?? silentLogger,
    hostname: options.hostname ?? `celery-ts@${osHostname()}`,
    concurrency,
    prefetch: options.prefetch ?? defaultPrefetch(concurrency),
    queues: options.queues ?? ["celery"],
  };
}

/** The worker's tasks by name; two tasks with one name are a CONFIG error. */
export function buildRegistry(tasks: Iterable<AnyTaskDefinition>): Map<string, TaskDefinition> {
  const registry = new Map<string, TaskDefinition>();
  for (const task of tasks) {
    if (registry.has(task.name)) {
      throw new CeleryTsError("CONFIG", `two tasks are named "${task.name}"`, { pkg: "worker" });
    }
    registry.set(task.name, task);
  }
  return registry;
}

/** A URL without its password, for `inspect conf`. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:**@");
}
