import {
  TaskState,
  celeryNow,
  exceptionInfo,
  isCeleryTsError,
  isReadyState,
  type Delivery,
  type ResultMeta,
  type StoreOptions,
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
  // Celery's field order, so the stored bytes match what a Python worker writes.
  const { status, result, traceback, date_done } = meta;
  const write = () =>
    backend.store(
      id,
      { status, result, traceback, children, date_done, task_id: id },
      storeOptions(message),
    );
  // A final state is kept through an outage (bounded: its message counts against the prefetch).
  await (isReadyState(status) ? state.keepTrying("a task's result", write) : write());
}

/**
 * Stores a final state as `storeState` does and, where the transport can write the backend's
 * result with its ack (both on one Redis), acknowledges `delivery` in the same write. Resolves
 * true when the delivery is acknowledged (settle nothing more), false when only the result is
 * stored. Nothing that needs the delivery unacknowledged may come between the store and the ack:
 * a redelivered task whose result is ready is acknowledged without running again anyway.
 */
export async function storeFinal(
  state: WorkerState,
  message: TaskMessage,
  meta: Pick<ResultMeta, "status" | "result" | "traceback" | "date_done">,
  delivery: Delivery,
  children: unknown[] = [],
): Promise<boolean> {
  const { backend } = state;
  if (backend?.prepareStore && delivery.ackWithResult && !state.abandoned.has(delivery)) {
    const id = message.headers.id;
    const { status, result, traceback, date_done } = meta;
    const prepared = backend.prepareStore(
      id,
      { status, result, traceback, children, date_done, task_id: id },
      storeOptions(message),
    );
    try {
      if (await delivery.ackWithResult(prepared)) return true;
    } catch (error) {
      // Maybe neither written: store it the usual way (the ack that follows may fail too).
      state.log.debug("could not store the result with the ack; storing it apart", {
        id,
        error: String(error),
      });
    }
  }
  await storeState(state, message, meta, children);
  return false;
}

/** Where an rpc:// backend must send the result. */
function storeOptions(message: TaskMessage): StoreOptions {
  const { reply_to: replyTo, correlation_id: correlationId } = message.properties;
  return { ...(replyTo !== undefined && { replyTo }), correlationId };
}

/**
 * Stores FAILURE (unless results are ignored), then fails the canvas around the task. With
 * `delivery`, acknowledges it with the store where `storeFinal` can: resolves true then.
 */
export async function storeFailure(
  state: WorkerState,
  message: TaskMessage,
  error: unknown,
  storeResults: boolean,
  delivery?: Delivery,
): Promise<boolean> {
  const result = exceptionInfo(error);
  const traceback = error instanceof Error ? (error.stack ?? null) : null;
  let acked = false;
  if (storeResults) {
    const meta = { status: TaskState.FAILURE, result, traceback, date_done: celeryNow() };
    if (delivery) acked = await storeFinal(state, message, meta, delivery);
    else await storeState(state, message, meta);
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
  return acked;
}
