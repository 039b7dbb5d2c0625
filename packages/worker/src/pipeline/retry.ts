import {
  TaskState,
  encodeTaskMessage,
  exceptionInfo,
  formatCeleryDate,
  maxRetriesExceededError,
  retryDelaySeconds,
  type RetryOptions,
  type TaskMessage,
} from "@celery-ts/core";
import { exceptionRepr } from "../events/worker-events.ts";
import { describeError } from "../internal/describe-error.ts";
import { storeFailure, storeState } from "../results/store-result.ts";
import type { Job, WorkerState } from "../setup/state.ts";
import { settle } from "./settle.ts";

/** A retry is a new message with the same id, one more retry and an eta; then the old one is acked. */
export async function retry(
  state: WorkerState,
  { delivery, message, task }: Job,
  retryOptions: RetryOptions,
  storeResults: boolean,
  fields: Record<string, unknown>,
): Promise<void> {
  const { log, control, lifecycle } = state;
  const { retries } = message.headers;
  const policy = task.options.retry ?? {};
  const maxRetries = retryOptions.maxRetries ?? policy.maxRetries ?? 3;
  const cause = retryOptions.error;
  if (retries >= maxRetries) {
    // Celery: the task's own error, else MaxRetriesExceededError with its message.
    const { task: name, id, argsrepr, kwargsrepr } = message.headers;
    const final = cause ?? maxRetriesExceededError(name, id, argsrepr, kwargsrepr);
    await storeFailure(state, message, final, storeResults);
    await lifecycle.ended(task, message, { state: TaskState.FAILURE, error: final });
    log.error(`task failed after ${retries} retries`, { ...fields, error: describeError(final) });
    control.events.failed(message, final);
    return settle(state, delivery, "ack");
  }
  const eta =
    retryOptions.eta ??
    new Date(Date.now() + 1000 * (retryOptions.countdown ?? retryDelaySeconds(policy, retries)));
  const next: TaskMessage = {
    ...message,
    headers: { ...message.headers, retries: retries + 1, eta: formatCeleryDate(eta) },
  };
  const priority = message.properties.priority;
  await state.transport!.publish(encodeTaskMessage(next), {
    queue: delivery.queue,
    availableAt: eta.getTime(),
    ...(typeof priority === "number" && { priority }),
  });
  if (storeResults) {
    await storeState(state, message, {
      status: TaskState.RETRY,
      // Celery stores the retry's cause, or None when the task gave none.
      result: cause === undefined ? null : exceptionInfo(cause),
      traceback: cause instanceof Error ? (cause.stack ?? null) : null,
      date_done: null,
    });
  }
  await lifecycle.ended(task, message, { state: TaskState.RETRY, error: cause, eta });
  control.events.task("task-retried", message, {
    exception: exceptionRepr(cause),
    traceback: cause instanceof Error ? (cause.stack ?? "") : "",
  });
  log.warn(`task will retry at ${eta.toISOString()}`, {
    ...fields,
    retry: retries + 1,
    ...(cause !== undefined && { error: describeError(cause) }),
  });
  await settle(state, delivery, "ack");
}
