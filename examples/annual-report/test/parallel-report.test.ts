// The report as a chord of twelve month tasks, on an in-process broker and a SQLite backend
// (which counts the chord's parts), with two workers sharing the months.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { createMemoryTransport, MemoryBroker } from "@celery-ts/core";
import { createSqliteBackend } from "@celery-ts/sqlite";
import { createWorker, type Worker } from "@celery-ts/worker";
import { afterEach, beforeEach, expect, it } from "vitest";
import { annualReportChord, startReport } from "../src/parallel-report.ts";
import { reportStatus } from "../src/status.ts";
import { assembleReport, generateReport, sumMonth } from "../src/tasks.ts";
import { tempDir } from "./support.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let workers: Worker[];
let client: Client;
const ran: string[] = [];

beforeEach(async () => {
  dir = await tempDir("annual-report-chord");
  process.env.REPORTS_DIR = dir.path;
  process.env.REPORT_STEP_MS = "20";
  process.env.REPORT_BASE_ORDERS = "1000";
  const broker = new MemoryBroker();
  const backend = `sqlite:///${join(dir.path, "results.db")}`;
  ran.length = 0;
  workers = ["a", "b"].map((name) =>
    createWorker({
      broker: createMemoryTransport({ broker }),
      backend,
      tasks: [generateReport, sumMonth, assembleReport],
      concurrency: 3,
      hostname: name,
      logger: {
        debug: () => undefined,
        info: (message, fields) => {
          if (message === "task started") ran.push(`${name}:${String(fields?.task)}`);
        },
        warn: () => undefined,
        error: () => undefined,
      },
    }),
  );
  await Promise.all(workers.map((w) => w.start()));
  client = createClient({
    broker: createMemoryTransport({ broker }),
    backend: createSqliteBackend({ path: join(dir.path, "results.db"), pollInterval: 0.02 }),
  });
});

afterEach(async () => {
  await client.close();
  await Promise.all(workers.map((w) => w.stop()));
  await dir.remove();
});

it("sums the twelve months in parallel, then assembles the report from them in order", async () => {
  const result = await client.applyAsync(annualReportChord(2024));
  const value = await result.get({ timeout: 30 });
  expect(value).toMatchObject({ year: 2024, file: `${result.id}.html` });
  expect(value.orders).toBeGreaterThan(12_000);
  // Both workers took months; the body ran once, after all twelve.
  const months = ran.filter((r) => r.endsWith("reports.sum_month"));
  expect(months).toHaveLength(12);
  expect(new Set(months.map((r) => r.split(":")[0]))).toEqual(new Set(["a", "b"]));
  expect(ran.filter((r) => r.endsWith("reports.assemble_annual"))).toHaveLength(1);
  const html = await readFile(join(dir.path, value.file), "utf8");
  expect(html).toContain("<h1>Annual report 2024</h1>");
  // The same report, month by month, as the sequential task builds it.
  const sequential = await (await client.task(generateReport).delay(2024)).get({ timeout: 30 });
  expect(sequential.revenueCents).toBe(value.revenueCents);
});

it("fails with ChordError naming the month the ledger has not got", async () => {
  const result = await client.applyAsync(annualReportChord(2026));
  const failure = await result.get({ timeout: 30, propagate: false });
  expect(failure).toMatchObject({ excType: "ChordError" });
  expect((failure as Error).message).toMatch(/raised NoDataError\('no sales data for July 2026/);
});

it("reports the months done while it runs, then the report; a failed month by its own error", async () => {
  const started = await startReport(client, 2024);
  // The group of months is saved under the report's id.
  const months = await client.restoreGroup(started.id);
  expect(months?.results).toHaveLength(12);
  for (;;) {
    const status = await reportStatus(client, started.id);
    if (status.state === "SUCCESS") {
      expect(status).toMatchObject({ url: `/reports/${started.id}`, year: 2024 });
      break;
    }
    expect(["PENDING", "PROGRESS"]).toContain(status.state);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }

  const failed = await startReport(client, 2026);
  await failed.get({ timeout: 30, propagate: false });
  expect(await reportStatus(client, failed.id)).toEqual({
    id: failed.id,
    state: "FAILURE",
    error: "NoDataError: no sales data for July 2026: the ledger covers January 2019 to June 2026",
  });
});

it("counts the months done from the saved group while no worker has them", async () => {
  // A broker no worker consumes: the months stay queued until this test stores their results.
  const idle = createClient({
    broker: createMemoryTransport({ broker: new MemoryBroker() }),
    backend: createSqliteBackend({ path: join(dir.path, "results.db"), pollInterval: 0.02 }),
  });
  try {
    const started = await startReport(idle, 2024);
    expect(await reportStatus(idle, started.id)).toEqual({ id: started.id, state: "PENDING" });
    const months = (await idle.restoreGroup(started.id))!.results;
    const backend = createSqliteBackend({ path: join(dir.path, "results.db") });
    for (const month of months.slice(0, 3)) {
      await backend.store(month.id, {
        status: "SUCCESS",
        result: null,
        traceback: null,
        children: [],
        date_done: new Date().toISOString(),
        task_id: month.id,
      });
    }
    await backend.close();
    expect(await reportStatus(idle, started.id)).toEqual({
      id: started.id,
      state: "PROGRESS",
      progress: { done: 3, total: 12, step: "3 of 12 months summed" },
    });
  } finally {
    await idle.close();
  }
});
