import {
  TaskState,
  celeryNow,
  exceptionInfo,
  isCeleryTsError,
  isReadyState,
  type ResultMeta,
  type TaskMessage,
} from "@celery-ts/core";
import { describeError } from "../internal/describe-error.ts";
import type { WorkerState } from "../setup/state.ts";

/** Stores a state of the task in `message`, with where an rpc:// backend must send it. */
export async function storeState(
  state: WorkerState,
  message: TaskMessage,
  meta: Pick<ResultMeta, "status" | "result" | "traceback" | "date_done">,
  children: unknown[] = [],
): Promise<void> {
  const { backend } = state;
  if (!backend) return;
  const id = message.headers.id;
  const { reply_to: replyTo, correlation_id: correlationId } = message.properties;
  // Celery's field order, so the stored bytes match what a Python worker writes.
  const { status, result, traceback, date_done } = meta;
  const write = () =>
    backend.store(
      id,
      { status, result, traceback, children, date_done, task_id: id },
      { ...(replyTo !== undefined && { replyTo }), correlationId },
    );
  // A final state is kept through an outage (bounded: its task's slot waits with it).
  await (isReadyState(status) ? state.keepTrying("a task's result", write) : write());
}

/** Stores FAILURE (unless results are ignored), then fails the canvas around the task. */
export async function storeFailure(
  state: WorkerState,
  message: TaskMessage,
  error: unknown,
  storeResults: boolean,
): Promise<void> {
  const result = exceptionInfo(error);
  const traceback = error instanceof Error ? (error.stack ?? null) : null;
  if (storeResults) {
    await storeState(state, message, {
      status: TaskState.FAILURE,
      result,
      traceback,
      date_done: celeryNow(),
    });
  }
  try {
    await state.canvas.afterFailure(message, result, traceback, storeResults);
  } catch (canvasError) {
    if (isCeleryTsError(canvasError) && canvasError.retryable) throw canvasError;
    // The failure is stored; what could not be sent around it is logged, never looped on.
    state.log.error("could not send the canvas around a failed task (errbacks, chord, chain)", {
      id: message.headers.id,
      error: describeError(canvasError),
    });
  }
}
