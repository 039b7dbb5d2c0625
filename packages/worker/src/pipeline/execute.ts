import { TaskState, isReadyState, parseCeleryDate, traceRun } from "@celery-ts/core";
import { ONCE_HEADER, claimOnce } from "../beat/once.ts";
import { taskLogFields } from "../internal/log-fields.ts";
import { runTask, type RunOutcome } from "../internal/run-task.ts";
import { storeState } from "../results/store-result.ts";
import type { Job, WorkerState } from "../setup/state.ts";
import { finish } from "./finish.ts";
import { discardRevoked } from "./revoke.ts";
import { settle } from "./settle.ts";

/** What a trace records as the run's error. */
const failureOf = (outcome: RunOutcome): unknown =>
  outcome.kind === "failure" ? outcome.error : undefined;

/**
 * Runs one job, from its last checks before running to its settled message. `release` frees the
 * job's concurrency slot: called once the task's code has returned, before its result is stored.
 */
export async function execute(state: WorkerState, job: Job, release: () => void): Promise<void> {
  const { delivery, message, task } = job;
  const { log, control, backend, abandoned } = state;
  const { id, retries, expires } = message.headers;
  const fields = taskLogFields(task, message);
  const storeResults = !(task.options.ignoreResult || message.headers.ignore_result);
  if (expires && parseCeleryDate(expires).getTime() < Date.now()) {
    log.info("task expired before it ran; marked REVOKED", fields);
    return discardRevoked(state, job, "expired");
  }
  if (control.isRevoked(id)) return discardRevoked(state, job, "revoked");
  if (delivery.redelivered && backend) {
    const previous = await backend.get(id);
    if (previous && isReadyState(previous.status)) {
      log.info(`redelivered task already ${previous.status}; not running it again`, fields);
      await settle(state, delivery, "ack");
      return;
    }
  }
  if (ONCE_HEADER in message.headers && !(await claimOnce(state, job, fields))) return;
  if (storeResults && task.options.trackStarted) {
    await storeState(state, message, {
      status: TaskState.STARTED,
      result: { pid: process.pid, hostname: state.hostname },
      traceback: null,
      date_done: null,
    });
  }
  log.info("task started", {
    ...fields,
    retries,
    ...(delivery.redelivered && { redelivered: true }),
  });
  await state.lifecycle.prerun(task, message);
  const started = performance.now();
  const terminate = new AbortController();
  control.requests.started(id, (reason) => terminate.abort(reason));
  control.events.task("task-started", message, { pid: process.pid });
  const run = (): ReturnType<typeof runTask> =>
    runTask({
      task,
      message,
      queue: delivery.queue,
      shutdown: state.shutdown.signal,
      terminate: terminate.signal,
      timeLimit: control.timeLimits.get(task.name),
      updateState: (status, meta) =>
        storeState(state, message, { status, result: meta, traceback: null, date_done: null }),
    });
  const outcome = await traceRun(message, run, failureOf);
  release();
  if (abandoned.has(delivery)) return;
  if (terminate.signal.aborted) return discardRevoked(state, job, "terminated");
  const runtime = Number(((performance.now() - started) / 1000).toFixed(6));
  try {
    await finish(state, job, outcome, storeResults, { ...fields, runtime });
  } catch (error) {
    // The result could not be stored: leave the task to run again rather than lose it.
    log.error("could not store the task's result; requeued to run again", {
      ...fields,
      error: String(error),
    });
    await settle(state, delivery, "requeue");
  }
}
