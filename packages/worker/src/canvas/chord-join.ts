import {
  TaskState,
  celeryNow,
  type ChordPart,
  type ExceptionInfo,
  type Logger,
  type Signature,
} from "@celery-ts/core";
import { applyFromTask, type TaskOrigin, type WorkerCanvasDeps } from "./canvas-sender.ts";

/** States whose exception a chord passes on (Celery's PROPAGATE_STATES). */
const PROPAGATE = new Set<string>([TaskState.FAILURE, TaskState.REVOKED]);

/**
 * A chord's header is complete: sends the body with the parts' results in header order, or, when a
 * part failed, stores the body as FAILURE with Celery's ChordError and calls the body's errbacks
 * (Celery's `chord_error_from_stack`).
 */
export async function completeChord(
  deps: WorkerCanvasDeps & { log: Logger },
  from: TaskOrigin,
  groupId: string,
  body: Signature,
  parts: readonly ChordPart[],
): Promise<void> {
  const failed = parts.find((part) => PROPAGATE.has(part.status));
  if (failed) {
    const reason = `Dependency ${failed.taskId} raised ${pyExceptionRepr(failed.result)}`;
    deps.log.error("chord failed: its body will not run", { group: groupId, reason });
    await failChordBody(deps, from, body, reason);
    return;
  }
  const results = parts.map((part) => part.result);
  try {
    await applyFromTask(deps, from, body, { args: [results] });
    deps.log.info("chord complete: body sent", { group: groupId, body: body.task });
  } catch (error) {
    deps.log.error("chord body could not be sent", { group: groupId, error: String(error) });
    await failChordBody(deps, from, body, `Callback error: ${String(error)}`);
  }
}

/** Stores ChordError on the body's id and sends the body's errbacks with that id, as Celery does. */
export async function failChordBody(
  deps: WorkerCanvasDeps,
  from: TaskOrigin,
  body: Signature,
  reason: string,
): Promise<void> {
  const bodyId = typeof body.options.task_id === "string" ? body.options.task_id : undefined;
  const backend = deps.backend();
  if (bodyId && backend) {
    const info: ExceptionInfo = {
      exc_type: "ChordError",
      exc_message: [reason],
      exc_module: "celery.exceptions",
    };
    await backend.store(bodyId, {
      status: TaskState.FAILURE,
      result: info,
      traceback: null,
      children: [],
      date_done: celeryNow(),
      task_id: bodyId,
    });
  }
  await sendErrbacks(deps, from, body.options.link_error, bodyId ?? from.id);
}

/**
 * Celery's errbacks on a worker that does not run them inline: each is sent as a task whose
 * first argument is the failed task's id (unless the signature is immutable).
 */
export async function sendErrbacks(
  deps: WorkerCanvasDeps,
  from: TaskOrigin,
  errbacks: unknown,
  failedId: string,
): Promise<void> {
  const list =
    errbacks === undefined || errbacks === null
      ? []
      : Array.isArray(errbacks)
        ? errbacks
        : [errbacks];
  for (const errback of list) {
    await applyFromTask(deps, from, errback as Signature, { args: [failedId] });
  }
}

/** `ValueError('boom')`: how Celery's ChordError names a failed part's exception. */
export function pyExceptionRepr(result: unknown): string {
  const info = (result ?? {}) as Partial<ExceptionInfo>;
  const type = typeof info.exc_type === "string" ? info.exc_type : "Exception";
  const args = Array.isArray(info.exc_message) ? info.exc_message : [info.exc_message];
  const shown = args.map((arg) =>
    typeof arg === "string" ? `'${arg.replaceAll("'", "\\'")}'` : JSON.stringify(arg),
  );
  return `${type}(${shown.join(", ")})`;
}
