import { defineTask } from "@celery-ts/core";

/** A task that does nothing: the benchmark measures the queue, not the work. */
export const noop = defineTask("bench.noop", (n: number) => n);

/** The no-op task, sent to `queue`. */
export const noopOn = (queue: string) => defineTask(noop.name, noop.run, { queue });
