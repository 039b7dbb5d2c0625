import type { Delivery, Logger } from "@celery-ts/core";
import { recordRefusal } from "../internal/refusal.ts";
import type { WorkerState } from "../setup/state.ts";

export type SettleAction = "ack" | "requeue" | "dead";

/** Settles a delivery, logging instead of throwing: a failed ack means a redelivery, not a crash. */
export async function settle(
  state: WorkerState,
  delivery: Delivery,
  action: SettleAction,
  reason?: string,
): Promise<void> {
  if (state.abandoned.has(delivery)) return;
  await settleNow(state.log, delivery, action, reason);
}

/** As `settle`, also for a delivery abandoned at shutdown. */
export async function settleNow(
  log: Logger,
  delivery: Delivery,
  action: SettleAction,
  reason?: string,
): Promise<void> {
  try {
    if (action === "ack") await delivery.ack();
    else {
      await delivery.reject({
        requeue: action === "requeue",
        ...(reason !== undefined && { reason }),
      });
    }
  } catch (error) {
    log.error("could not settle a message with the broker; it will be redelivered", {
      action,
      error: String(error),
    });
  }
}

export async function deadLetter(
  state: WorkerState,
  delivery: Delivery,
  reason: string,
  fields: Record<string, unknown> = {},
): Promise<void> {
  state.log.error(`rejected message: ${reason}`, { queue: delivery.queue, ...fields });
  await settle(state, delivery, "dead", reason);
}

/** Refuses a message before running it: FAILURE stored when its id is readable, then dead-lettered. */
export async function refuse(
  state: WorkerState,
  delivery: Delivery,
  reason: string,
  failure?: Error,
): Promise<void> {
  const fields = await recordRefusal(state.backend, delivery.message, reason, failure, state.log);
  return deadLetter(state, delivery, reason, fields);
}
