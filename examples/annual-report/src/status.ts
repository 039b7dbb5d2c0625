// What GET /status/:id answers: the task's state as the result backend has it, in the shape the
// page shows.
import { TaskState, failureFromMeta, type ResultMeta } from "@celery-ts/core";
import type { ReportProgress, ReportResult } from "./tasks.ts";

export interface ReportStatus {
  id: string;
  /** PENDING (not started, or unknown), PROGRESS, SUCCESS, FAILURE, REVOKED, RETRY, ... */
  state: string;
  progress?: ReportProgress;
  /** SUCCESS: where the report is. */
  url?: string;
  year?: number;
  /** FAILURE, REVOKED: why, as "ErrorType: message". */
  error?: string;
}

function isProgress(value: unknown): value is ReportProgress {
  const p = value as Partial<ReportProgress> | null;
  return (
    typeof p === "object" && p !== null && typeof p.done === "number" && typeof p.total === "number"
  );
}

export function describeStatus(id: string, meta: ResultMeta | undefined): ReportStatus {
  if (meta === undefined) return { id, state: TaskState.PENDING };
  const state = meta.status;
  switch (state) {
    case "PROGRESS":
      return isProgress(meta.result) ? { id, state, progress: meta.result } : { id, state };
    case TaskState.SUCCESS: {
      const result = meta.result as ReportResult;
      return { id, state, url: `/reports/${encodeURIComponent(id)}`, year: result.year };
    }
    case TaskState.FAILURE:
    case TaskState.REVOKED: {
      const failure = failureFromMeta(meta);
      return { id, state, error: `${failure.excType}: ${failure.excMessage}` };
    }
    default:
      return { id, state };
  }
}
