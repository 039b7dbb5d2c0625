import { TaskState, isReadyState, parseCeleryDate, traceRun } from "@celery-ts/core";
import { ONCE_HEADER, claimOnce } from "../beat/once.ts";
import { taskLogFields } from "../internal/log-fields.ts";
import { runTask, type RunOutcome } from "../internal/run-task.ts";
import { Terminator } from "../internal/task-abort.ts";
import { storeState } from "../results/store-result.ts";
import type { Job, WorkerState } from "../setup/state.ts";
import { finish } from "./finish.ts";
import { discardRevoked } from "./revoke.ts";
import { settle } from "./settle.ts";

/** What a trace records as the run's error. */
const failureOf = (outcome: RunOutcome): unknown =>
  outcome.kind === "failure" ? outcome.error : undefined;

/** The task-started event's fields: the same for every task. */
const STARTED_FIELDS: Readonly<Record<string, unknown>> = { pid: process.pid };

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
  log.info(
    "task started",
    delivery.redelivered ? { ...fields, retries, redelivered: true } : { ...fields, retries },
  );
  const prerun = state.lifecycle.prerun(task, message);
  if (prerun) await prerun;
  const started = performance.now();
  const terminator = new Terminator();
  control.requests.started(id, terminator.terminate);
  control.events.task("task-started", message, STARTED_FIELDS);
  const run = (): ReturnType<typeof runTask> =>
    runTask({
      task,
      message,
      queue: delivery.queue,
      shutdown: state.shutdown.signal,
      terminate: terminator,
      timeLimit: control.timeLimits.get(task.name),
      updateState: (status, meta) =>
        storeState(state, message, { status, result: meta, traceback: null, date_done: null }),
    });
  const outcome = await traceRun(message, run, failureOf);
  release();
  if (abandoned.has(delivery)) return;
  if (terminator.terminated) return discardRevoked(state, job, "terminated");
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
