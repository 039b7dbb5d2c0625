import { TaskState, celeryNow, exceptionInfo } from "@celery-ts/core";
import { revokedError } from "../control/revoked.ts";
import { storeState } from "../results/store-result.ts";
import type { Job, WorkerState } from "../setup/state.ts";
import { settle } from "./settle.ts";

/** A revoked (or expired, or terminated) task: stored REVOKED, acknowledged, never run. */
export async function discardRevoked(
  state: WorkerState,
  { delivery, message, task }: Job,
  reason: "revoked" | "expired" | "terminated",
): Promise<void> {
  const { log, control } = state;
  const { id } = message.headers;
  if (reason !== "expired") log.info(`task ${reason}; marked REVOKED`, { task: task.name, id });
  control.events.task("task-revoked", message, {
    terminated: reason === "terminated",
    signum: reason === "terminated" ? 15 : null,
    expired: reason === "expired",
  });
  if (!(task.options.ignoreResult || message.headers.ignore_result)) {
    await storeState(state, message, {
      status: TaskState.REVOKED,
      result: exceptionInfo(revokedError(reason)),
      traceback: null,
      date_done: celeryNow(),
    }).catch((error: unknown) =>
      log.error("could not store REVOKED", { id, error: String(error) }),
    );
  }
  await state.lifecycle.revoked(task, message);
  await settle(state, delivery, "ack");
  control.requests.finished(id);
}
