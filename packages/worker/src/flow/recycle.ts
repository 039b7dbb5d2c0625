import { CeleryTsError } from "@celery-ts/core";

/** Why a worker process retires, and what it had done by then. */
export interface RecycleInfo {
  reason: "max-tasks" | "max-memory";
  /** Tasks started in this process. */
  tasks: number;
  /** Resident memory in KiB when it decided. */
  rssKiB: number;
}

export interface RecyclePolicy {
  /** Celery's `--max-tasks-per-child`: start at most this many tasks, then retire. */
  maxTasksPerChild?: number | undefined;
  /** Celery's `--max-memory-per-child`, KiB: retire after a task leaves the resident memory above it. */
  maxMemoryPerChild?: number | undefined;
}

export interface Recycler {
  /** True once a limit is reached: the worker starts no more tasks. */
  readonly retiring: boolean;
  taskStarted(): void;
  taskFinished(): void;
}

const rssKiB = (): number => Math.round(process.memoryUsage.rss() / 1024);

/** Checks the policy's values: whole numbers of 1 or more. */
export function validateRecyclePolicy(policy: RecyclePolicy): void {
  for (const [name, value] of Object.entries(policy)) {
    if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 1)) {
      throw new CeleryTsError(
        "CONFIG",
        `${name} takes a whole number of 1 or more, not ${String(value)}`,
        { pkg: "worker" },
      );
    }
  }
}

/**
 * Counts a worker's tasks and watches its memory; calls `retire` once, when a limit is reached.
 * The worker then takes no more tasks, returns those it took ahead, lets the running ones finish
 * and acknowledge, and stops; a supervisor starts a fresh process in its place.
 */
export function createRecycler(
  policy: RecyclePolicy,
  retire: (info: RecycleInfo) => void,
): Recycler {
  validateRecyclePolicy(policy);
  let started = 0;
  let retiring = false;
  const trip = (reason: RecycleInfo["reason"]): void => {
    if (retiring) return;
    retiring = true;
    retire({ reason, tasks: started, rssKiB: rssKiB() });
  };
  return {
    get retiring() {
      return retiring;
    },
    taskStarted() {
      started++;
      if (policy.maxTasksPerChild !== undefined && started >= policy.maxTasksPerChild) {
        trip("max-tasks");
      }
    },
    taskFinished() {
      if (policy.maxMemoryPerChild !== undefined && rssKiB() > policy.maxMemoryPerChild) {
        trip("max-memory");
      }
    },
  };
}
