// What GET /status/:id answers: the task's state as the result backend has it, in the shape the
// page shows.
import type { Client } from "@celery-ts/client";
import { TaskState, failureFromMeta, type ResultMeta } from "@celery-ts/core";
import { MONTHS } from "./parallel-report.ts";
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

/**
 * The status of a report started by `startReport()`: the assembling task's state once it has
 * one; until then, the months done, counted from the saved group of month tasks. A report that
 * failed because a month did says that month's error (the first in month order), not only the
 * chord's `ChordError`.
 */
export async function reportStatus(client: Client, id: string): Promise<ReportStatus> {
  const meta = await client.asyncResult(id).info();
  const months = await client.restoreGroup(id);
  if (meta?.status === TaskState.FAILURE && months) {
    for (const month of months.results) {
      const info = "results" in month ? undefined : await month.info();
      if (info?.status === TaskState.FAILURE) return describeStatus(id, info);
    }
  }
  if (meta !== undefined || !months) return describeStatus(id, meta);
  const done = await months.completedCount();
  if (done === 0) return { id, state: TaskState.PENDING };
  const step = done < MONTHS ? `${done} of ${MONTHS} months summed` : "writing the report";
  return { id, state: "PROGRESS", progress: { done, total: MONTHS, step } };
}
