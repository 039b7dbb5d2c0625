import { defineTask } from "@celery-ts/core";

/** A task that does nothing: the benchmark measures the queue, not the work. */
export const noop = defineTask("bench.noop", (n: number) => n);
