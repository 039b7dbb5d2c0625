// The task of the annual-report app. The worker runs it (`celery-ts worker --app src/tasks.ts`);
// the web server imports this module for the task's name and types, and never runs it.
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { currentTask, defineTask } from "@celery-ts/core";
import { integer } from "./config.ts";
import { LEDGER, aggregateMonth, hasMonth, monthName, type MonthSummary } from "./ledger.ts";
import { renderReport } from "./report.ts";

/** The year has months the ledger does not have: there is nothing to report on. */
export class NoDataError extends Error {
  override name = "NoDataError";
}

/** What the report's PROGRESS state carries, for the status page. */
export interface ReportProgress {
  done: number;
  total: number;
  step: string;
}

export interface ReportResult {
  year: number;
  /** The report's file name in REPORTS_DIR. */
  file: string;
  orders: number;
  revenueCents: number;
}

/**
 * How much work a report is, from the worker's environment: REPORT_BASE_ORDERS orders a month to
 * sum (January 2019's volume; later months have more), and REPORT_STEP_MS, the time to fetch a
 * month from the data warehouse, which this example has not got. The defaults make a report take
 * about half a minute; the tests make it take a few seconds.
 */
export function reportSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): {
  baseOrders: number;
  stepMs: number;
  reportsDir: string;
} {
  return {
    baseOrders: integer(env, "REPORT_BASE_ORDERS", 4_000_000, 100_000_000),
    stepMs: integer(env, "REPORT_STEP_MS", 1_500, 600_000),
    reportsDir: env.REPORTS_DIR || join(".data", "reports"),
  };
}

const ledgerRange = `${monthName(LEDGER.first.month)} ${LEDGER.first.year} to ${monthName(LEDGER.last.month)} ${LEDGER.last.year}`;

/** Throws `NoDataError` for a month the ledger does not cover. */
export function checkMonth(year: number, month: number): void {
  if (!hasMonth(year, month)) {
    throw new NoDataError(
      `no sales data for ${monthName(month)} ${year}: the ledger covers ${ledgerRange}`,
    );
  }
}

/**
 * Writes the report file of a year under `<taskId>.html` (under another name first, then
 * renamed: nobody ever reads half a report) and returns what the task returns.
 */
export async function writeReport(
  reportsDir: string,
  taskId: string,
  year: number,
  months: MonthSummary[],
): Promise<ReportResult> {
  const file = `${taskId}.html`;
  await mkdir(reportsDir, { recursive: true });
  await writeFile(join(reportsDir, `${file}.tmp`), renderReport(year, months, new Date()));
  await rename(join(reportsDir, `${file}.tmp`), join(reportsDir, file));
  return {
    year,
    file,
    orders: months.reduce((sum, m) => sum + m.orders, 0),
    revenueCents: months.reduce((sum, m) => sum + m.revenueCents, 0),
  };
}

/** Builds the sales report of a year, month by month, reporting progress as it goes. */
export const generateReport = defineTask(
  "reports.generate_annual",
  async (year: number): Promise<ReportResult> => {
    const task = currentTask();
    const { baseOrders, stepMs, reportsDir } = reportSettingsFromEnv();
    const total = 12;
    const progress = (done: number, step: string): Promise<void> =>
      task.updateState("PROGRESS", { done, total, step } satisfies ReportProgress);

    await progress(0, "starting");
    const months: MonthSummary[] = [];
    for (let month = 1; month <= total; month++) {
      checkMonth(year, month);
      await sleep(stepMs, undefined, { signal: task.signal }); // fetching the month (and honouring a shutdown)
      months.push(aggregateMonth(year, month, baseOrders));
      await progress(month, `${monthName(month)} ${year} summed`);
    }
    await progress(total, "writing the report");

    return writeReport(reportsDir, task.id, year, months);
  },
  // A report that runs for 10 minutes has gone wrong: stop it, and fail.
  { timeLimit: { soft: 600, hard: 630 } },
);

// The chord version of the report (src/parallel-report.ts): exported here so the worker loads it.
export { assembleReport, sumMonth } from "./parallel-report.ts";
