import { clockValue } from "@celery-ts/core";
import type { WorkerEvents } from "../events/worker-events.ts";
import type { ControlTarget } from "./commands.ts";
import { celeryConf } from "./conf.ts";
import type { RequestTracker } from "./requests.ts";
import { revokedError, type RevokedSet } from "./revoked.ts";
import type { WorkerControlOptions, WorkerInternals } from "./worker-control.ts";

/** The state remote control keeps for one worker, beside what the worker lends it. */
export interface ControlState {
  requests: RequestTracker;
  revoked: RevokedSet;
  events: WorkerEvents;
  rateLimits: Map<string, string | null>;
  timeLimits: Map<string, { soft?: number; hard?: number }>;
}

/** What the control commands act on: the worker's knobs and remote control's own state. */
export function createControlTarget(
  options: WorkerControlOptions,
  worker: WorkerInternals,
  state: ControlState,
): ControlTarget {
  const { hostname, logger } = worker;
  const { requests, revoked, events, rateLimits, timeLimits } = state;
  return {
    hostname,
    registry: worker.registry,
    requests,
    revoked,
    rateLimits,
    setRateLimit: (name, rate) => {
      worker.setRateLimit(name, rate);
      rateLimits.set(name, rate);
      options.onRateLimit?.(name, rate);
    },
    timeLimits,
    concurrency: worker.concurrency,
    setConcurrency: worker.setConcurrency,
    prefetch: worker.prefetch,
    queues: worker.queues,
    setQueues: worker.setQueues,
    taskEvents: () => events.taskEvents,
    setTaskEvents: (on) => (events.taskEvents = on),
    sendHeartbeat: () => events.heartbeat(),
    shutdown: (reason) => {
      logger.warn(reason);
      setImmediate(() => worker.shutdown(reason));
    },
    terminate: (id, signal) => {
      const request = requests.get(id);
      if (request?.state !== "active" || !request.terminate) return false;
      logger.info(`terminating task ${id} (${signal})`);
      request.terminate(revokedError("terminated"));
      return true;
    },
    stats: () => stats(worker, requests),
    conf: () => conf(options, worker, events),
  };
}

/** Celery's settings this worker has, by Celery's names (`inspect conf`). */
function conf(
  options: WorkerControlOptions,
  worker: WorkerInternals,
  events: WorkerEvents,
): Record<string, unknown> {
  const { broker, backend } = worker.describe();
  return celeryConf({
    ...(broker !== undefined && { broker }),
    ...(backend !== undefined && { backend }),
    concurrency: worker.concurrency(),
    prefetch: worker.prefetch(),
    taskEvents: events.taskEvents,
    remoteControl: options.remoteControl !== false,
    maxTasksPerChild: options.maxTasksPerChild,
    maxMemoryPerChild: options.maxMemoryPerChild,
    stateDb: options.stateDb,
  });
}

function stats(worker: WorkerInternals, requests: RequestTracker): Record<string, unknown> {
  const usage = process.resourceUsage();
  const { transport } = worker.describe();
  return {
    total: requests.totals(),
    pid: process.pid,
    clock: String(clockValue()),
    uptime: Math.round((Date.now() - worker.startedAt) / 1000),
    pool: {
      "max-concurrency": worker.concurrency(),
      processes: [process.pid],
      "max-tasks-per-child": "N/A",
      "put-guarded-by-semaphore": false,
      timeouts: [0, 0],
      implementation: "celery-ts:async",
    },
    broker: { transport },
    prefetch_count: worker.prefetch(),
    rusage: {
      utime: usage.userCPUTime / 1e6,
      stime: usage.systemCPUTime / 1e6,
      maxrss: usage.maxRSS,
      minflt: usage.minorPageFault,
      majflt: usage.majorPageFault,
      inblock: usage.fsRead,
      oublock: usage.fsWrite,
      nvcsw: usage.voluntaryContextSwitches,
      nivcsw: usage.involuntaryContextSwitches,
    },
  };
}
