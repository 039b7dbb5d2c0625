// The task of the fleet rate limit bench, loaded by `celery-ts worker --app` in each worker.
import { appendFileSync } from "node:fs";
import { defineTask } from "@celery-ts/core";

/** The fleet's limit, per second, shared by every worker through the store. */
export const FLEET_RATE = 100;

/** A no-op at most FLEET_RATE times a second fleet-wide; appends "<pid> <ms>" to $BENCH_FLEET_LOG. */
export const fleetLimited = defineTask(
  "bench.fleet_limited",
  () => {
    appendFileSync(process.env.BENCH_FLEET_LOG!, `${process.pid} ${Date.now()}\n`);
  },
  { rateLimit: { rate: `${FLEET_RATE}/s`, scope: "fleet" } },
);
