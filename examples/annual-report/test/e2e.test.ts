// End to end, in a real browser, with a real worker process: click "Generate report" (which sends
// the chord of twelve month tasks and the assembling task), watch the status go from PENDING
// through PROGRESS (months done) to a link, and follow it; and watch a report fail.
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import type { Browser, Page } from "playwright-core";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.ts";
import { startWorkerProcess, type WorkerProcess } from "@celery-ts/worker";
import { launchChromium, screenshotPath, sqliteUrl, tempDir } from "./support.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let browser: Browser;
let worker: WorkerProcess;
let client: Client;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  dir = await tempDir("annual-report-e2e");
  const url = sqliteUrl(dir.path);
  const reportsDir = join(dir.path, "reports");
  // 12 months of about 250 ms each, two at a time: a few seconds, polled every 500 ms.
  worker = startWorkerProcess({
    app: join(import.meta.dirname, "../src/tasks.ts"),
    broker: url,
    backend: url,
    processes: 1,
    concurrency: 2,
    logFile: join(dir.path, "worker.log"),
    env: { REPORTS_DIR: reportsDir, REPORT_STEP_MS: "250", REPORT_BASE_ORDERS: "20000" },
  });
  client = createClient({ broker: url, backend: url });
  app = await buildApp({ client, reportsDir, pollIntervalMs: 500 });
  base = await app.listen({ host: "127.0.0.1", port: 0 });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await client?.close();
  const code = await worker?.stop();
  await dir?.remove();
  expect(code).toBe(0);
}, 60_000);

/** The states the page's status line showed, in order, from its history list. */
const history = (page: Page): Promise<string[]> =>
  page.$$eval("#history li", (items) => items.map((li) => li.textContent ?? ""));

async function generate(page: Page, year: string, { progress = true } = {}): Promise<void> {
  await page.goto(`${base}/`);
  await page.selectOption("#year", year);
  const started = Date.now();
  await page.click("#start");
  // The answer comes at once: the task id, and PENDING.
  await page.waitForSelector('#status[data-state="PENDING"]', { timeout: 5_000 });
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(await page.textContent("#task-id")).toMatch(/^[0-9a-f-]{36}$/);
  if (progress) await page.waitForSelector('#status[data-state="PROGRESS"]', { timeout: 30_000 });
}

describe("the annual report page", () => {
  it("shows PENDING, then the progress, then a link to the report", async () => {
    const page = await browser.newPage();
    try {
      await generate(page, "2024");
      expect(await page.textContent("#status")).toMatch(/^PROGRESS \d+\/12: /);
      await page.waitForSelector('#status[data-state="SUCCESS"]', { timeout: 60_000 });
      const seen = await history(page);
      expect(seen[0]).toContain("PENDING");
      expect(seen.some((line) => /PROGRESS \d+\/12/.test(line))).toBe(true);
      expect(seen.at(-1)).toContain("SUCCESS");
      expect(seen.findIndex((l) => l.includes("PROGRESS"))).toBeLessThan(seen.length - 1);
      expect(await page.getAttribute("#progress", "value")).toBe("12");
      expect(page.url()).toMatch(/\?task=[0-9a-f-]{36}$/);
      await page.screenshot({ path: screenshotPath("annual-report-done"), fullPage: true });

      await page.click("#report-link");
      await page.waitForURL(/\/reports\/[0-9a-f-]{36}$/);
      expect(await page.textContent("h1")).toBe("Annual report 2024");
      expect(await page.$$eval("#months tbody tr", (rows) => rows.length)).toBe(12);
      await page.screenshot({ path: screenshotPath("annual-report-report"), fullPage: true });
    } finally {
      await page.close();
    }
  }, 90_000);

  it("shows the failure when the ledger has no data for the year", async () => {
    const page = await browser.newPage();
    try {
      // Closed through June: July to December fail; the report says the first of them. (Those
      // months fail at once, so the page may go from PENDING to FAILURE without a PROGRESS.)
      await generate(page, "2026", { progress: false });
      await page.waitForSelector('#status[data-state="FAILURE"]', { timeout: 60_000 });
      expect(await page.textContent("#status")).toBe(
        "FAILURE: NoDataError: no sales data for July 2026: the ledger covers January 2019 to June 2026",
      );
      expect(await page.$("#report-link")).toBeNull();
      expect(await page.isEnabled("#start")).toBe(true);
      await page.screenshot({ path: screenshotPath("annual-report-failed"), fullPage: true });
    } finally {
      await page.close();
    }
  }, 90_000);
});
