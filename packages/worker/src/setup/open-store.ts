import { CeleryTsError, resolveStore, type CoordinationStore } from "@celery-ts/core";
import type { WorkerOptions } from "./options.ts";

/** The store fleet-wide limits count in: opened only when a task has one. */
export async function openStore(
  options: WorkerOptions,
  fleetTasks: readonly string[],
): Promise<CoordinationStore | undefined> {
  if (fleetTasks.length === 0) return undefined;
  const spec = options.store ?? (typeof options.broker === "string" ? options.broker : undefined);
  if (spec === undefined) {
    throw new CeleryTsError(
      "CONFIG",
      `task ${fleetTasks.join(", ")} has a fleet-wide rate limit, which counts in a coordination ` +
        "store: give the worker a store option (a URL such as redis://127.0.0.1:6379/0)",
      { pkg: "worker" },
    );
  }
  // Built from a URL, its connection reports to the worker's log, as the broker's does.
  const store = await resolveStore(spec, { ...(options.logger && { logger: options.logger }) });
  await store.connect();
  return store;
}
