// Tasks of the fault tests, loaded by `celery-ts worker --app`.
import { appendFileSync } from "node:fs";
import { defineTask } from "@celery-ts/core";
import { sleep } from "@celery-ts/core/driver";

/**
 * Sleeps 10-50 ms, then appends "<i> <pid>" to $CELERY_TS_FAULT_LOG: one line per completed run,
 * written before the result is stored, so that a run the worker died after still counts.
 */
export const work = defineTask("faults.work", async (i: number) => {
  await sleep(10 + ((i * 7) % 41));
  appendFileSync(process.env.CELERY_TS_FAULT_LOG!, `${i} ${process.pid}\n`);
  return i;
});

/** A slow task on a live worker: must run once, however long it takes. */
export const slow = defineTask("faults.slow", async (i: number, ms: number) => {
  await sleep(ms);
  appendFileSync(process.env.CELERY_TS_FAULT_LOG!, `${i} ${process.pid}\n`);
  return i;
});
