import type { Client } from "@celery-ts/client";
import type { Logger, Transport } from "@celery-ts/core";
import type { FleetState } from "./fleet-state.ts";
import type { Action } from "./internal/action-kit.ts";
import { queueActions } from "./internal/queue-actions.ts";
import type { QueueWatch } from "./internal/queue-watch.ts";
import { taskActions } from "./internal/task-actions.ts";

export { ActionError } from "./internal/action-kit.ts";
export type { Action, ActionResult } from "./internal/action-kit.ts";

/**
 * The dashboard's actions, each one a function of a JSON body: revoke, retry, rateLimit (tasks);
 * purge, replayDeadLetters, purgeDeadLetters (queues).
 */
export function createActions(deps: {
  client: Client;
  transport: Transport;
  state: FleetState;
  queues: QueueWatch;
  logger: Logger;
}): Record<string, Action> {
  return { ...taskActions(deps), ...queueActions(deps) };
}
