// The annual report as a chord: twelve month tasks run in parallel (on as many workers as there
// are), and when the last one is done the worker that finished it sends the assembling task with
// the twelve summaries in month order. The web server imports this module to start reports; the
// worker loads the tasks through src/tasks.ts.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { chord, group, s, type AsyncResult, type Client } from "@celery-ts/client";
import { currentTask, defineTask } from "@celery-ts/core";
import { aggregateMonth, type MonthSummary } from "./ledger.ts";
import { checkMonth, reportSettingsFromEnv, writeReport, type ReportResult } from "./tasks.ts";

/** One month of the ledger, summed: a chord header part. */
export const sumMonth = defineTask(
  "reports.sum_month",
  async (year: number, month: number): Promise<MonthSummary> => {
    checkMonth(year, month);
    const { baseOrders, stepMs } = reportSettingsFromEnv();
    await sleep(stepMs, undefined, { signal: currentTask().signal }); // fetching the month
    return aggregateMonth(year, month, baseOrders);
  },
);

/** The chord's body: the twelve summaries, in month order, become the report file. */
export const assembleReport = defineTask(
  "reports.assemble_annual",
  async (months: MonthSummary[], year: number): Promise<ReportResult> => {
    return writeReport(reportSettingsFromEnv().reportsDir, currentTask().id, year, months);
  },
);

/** How many months a report has: the chord's header size. */
export const MONTHS = 12;

/**
 * The annual report as a chord: `client.applyAsync(annualReportChord(2024))` resolves an
 * `AsyncResult<ReportResult>` (its `parent` is the group of month results). A month the ledger
 * has not got fails its part, and the report fails with Celery's ChordError naming it. With
 * `id`, the report (the body) and the group of months both have that id.
 */
export function annualReportChord(year: number, id?: string) {
  const months = Array.from({ length: MONTHS }, (_, i) => s(sumMonth, year, i + 1));
  const header = id === undefined ? group(...months) : group(...months).set({ taskId: id });
  const report = chord(header, s(assembleReport, year));
  return id === undefined ? report : report.set({ taskId: id });
}

/**
 * Starts the report of a year and returns its result. The group of months is saved under the
 * report's id, so that the status page can restore it and count the months done.
 */
export async function startReport(
  client: Client,
  year: number,
): Promise<AsyncResult<ReportResult>> {
  const result = await client.applyAsync(annualReportChord(year, randomUUID()));
  if (result.parent && "results" in result.parent) await result.parent.save();
  return result;
}
