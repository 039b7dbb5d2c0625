import { TaskState, celeryNow, isCeleryTsError, pythonRepr } from "@celery-ts/core";
import { describeError } from "../internal/describe-error.ts";
import type { RunOutcome } from "../internal/run-task.ts";
import { storeFailure, storeFinal } from "../results/store-result.ts";
import type { Job, WorkerState } from "../setup/state.ts";
import { retry } from "./retry.ts";
import { settle } from "./settle.ts";

type Fields = Record<string, unknown>;

/** Settles a run by its outcome: stores the result, sends the canvas, tells hooks and events. */
export async function finish(
  state: WorkerState,
  job: Job,
  outcome: RunOutcome,
  storeResults: boolean,
  fields: Fields,
): Promise<void> {
  switch (outcome.kind) {
    case "success":
      return finishSuccess(state, job, outcome.value, storeResults, fields);
    case "retry":
      return retry(state, job, outcome.options, storeResults, fields);
    case "failure": {
      const { message, task } = job;
      const acked = await storeFailure(state, message, outcome.error, storeResults, job.delivery);
      await state.lifecycle.ended(task, message, {
        state: TaskState.FAILURE,
        error: outcome.error,
      });
      state.log.error("task failed", {
        ...fields,
        error: describeError(outcome.error),
        ...(outcome.hint !== undefined && { hint: outcome.hint }),
      });
      state.control.events.failed(message, outcome.error);
      if (!acked) await settle(state, job.delivery, "ack");
      return;
    }
    case "signal":
      return finishSignal(state, job, outcome.signal, fields);
  }
}

async function finishSuccess(
  state: WorkerState,
  job: Job,
  value: unknown,
  storeResults: boolean,
  fields: Fields,
): Promise<void> {
  const { message, task } = job;
  const { canvas } = state;
  // Celery sends callbacks and the chain's next step before storing, so children lists them.
  let children: unknown[];
  try {
    children = await canvas.afterSuccess(message, value);
  } catch (error) {
    // A canvas that cannot be sent (a malformed signature) fails the task, as in Celery;
    // a broker outage is retryable and requeues it instead.
    if (isCeleryTsError(error) && error.retryable) throw error;
    return finish(state, job, { kind: "failure", error }, storeResults, fields);
  }
  let acked = false;
  if (storeResults) {
    try {
      acked = await storeFinal(
        state,
        message,
        { status: TaskState.SUCCESS, result: value, traceback: null, date_done: celeryNow() },
        job.delivery,
        children,
      );
    } catch (error) {
      if (!isCeleryTsError(error, "ENCODE")) throw error;
      return finish(state, job, { kind: "failure", error }, storeResults, fields);
    }
  }
  // Logged once the result is stored, before the canvas around it is sent.
  state.log.info("task succeeded", fields);
  await countChordPart(state, message, value, fields);
  await state.lifecycle.ended(task, message, { state: TaskState.SUCCESS, result: value });
  const { events } = state.control;
  if (events.wanted(message)) {
    events.task("task-succeeded", message, { result: pythonRepr(value), runtime: fields.runtime });
  }
  if (!acked) await settle(state, job.delivery, "ack");
}

/**
 * Counts the chord part once the result is stored. A failure is logged, never thrown: the result
 * is stored (and maybe acknowledged with it), so a requeue would not run the task again (a
 * redelivered task whose result is ready is acknowledged without running).
 */
async function countChordPart(
  state: WorkerState,
  message: Job["message"],
  value: unknown,
  fields: Fields,
): Promise<void> {
  try {
    await state.canvas.afterStored(message, value);
  } catch (error) {
    state.log.error(
      `task ${message.headers.task}[${message.headers.id}] succeeded and its result is stored, ` +
        "but its chord part could not be counted (or, the last part, the chord's body sent): " +
        "the chord's body may never run; check the result backend, then run the chord again",
      { ...fields, error: describeError(error) },
    );
  }
}

async function finishSignal(
  state: WorkerState,
  { delivery, message, task }: Job,
  signal: Extract<RunOutcome, { kind: "signal" }>["signal"],
  fields: Fields,
): Promise<void> {
  const ending = signal.kind === "ignore" ? "IGNORED" : "REJECTED";
  await state.lifecycle.ended(task, message, { state: ending, reason: signal.message });
  if (signal.kind === "ignore") {
    state.log.info(`task ignored: ${signal.message}`, fields);
    return settle(state, delivery, "ack");
  }
  state.log.warn(`task rejected: ${signal.message}`, { ...fields, requeue: signal.requeue });
  state.control.events.task("task-rejected", message, { requeue: signal.requeue });
  return settle(state, delivery, signal.requeue ? "requeue" : "dead", signal.message);
}
