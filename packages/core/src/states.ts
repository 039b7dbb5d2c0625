/** Celery's task states, spelled as on the wire. */
export const TaskState = {
  /** Unknown to the backend: queued, or never sent, or forgotten. */
  PENDING: "PENDING",
  RECEIVED: "RECEIVED",
  /** Running; stored only when the task asks for `trackStarted`. */
  STARTED: "STARTED",
  SUCCESS: "SUCCESS",
  FAILURE: "FAILURE",
  /** Failed and scheduled to run again; the result holds the error that caused the retry. */
  RETRY: "RETRY",
  /** Revoked or expired before it ran. */
  REVOKED: "REVOKED",
} as const;

/** A Celery state, or a custom one a task reports as progress (e.g. "PROGRESS"). */
export type TaskState = (typeof TaskState)[keyof typeof TaskState] | (string & {});

const READY_STATES: ReadonlySet<string> = new Set([
  TaskState.SUCCESS,
  TaskState.FAILURE,
  TaskState.REVOKED,
]);

/** Ready states are final: the task will not change state again. */
export function isReadyState(state: string): boolean {
  return READY_STATES.has(state);
}
