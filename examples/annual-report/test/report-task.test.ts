// The report task on an in-process worker, with a backend that records every state it stores.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { createMemoryBackend, createMemoryTransport, type ResultBackend } from "@celery-ts/core";
import { createWorker, type Worker } from "@celery-ts/worker";
import { afterEach, beforeEach, expect, it } from "vitest";
import { generateReport } from "../src/tasks.ts";
import { tempDir } from "./support.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let states: { status: string; result: unknown }[];
let worker: Worker;
let client: Client;

beforeEach(async () => {
  dir = await tempDir("annual-report-task");
  process.env.REPORTS_DIR = dir.path;
  process.env.REPORT_STEP_MS = "0";
  process.env.REPORT_BASE_ORDERS = "1000";
  const memory = createMemoryBackend();
  states = [];
  const backend: ResultBackend = {
    ...memory,
    store: (id, meta, options) => {
      states.push({ status: meta.status, result: meta.result });
      return memory.store(id, meta, options);
    },
  };
  const broker = createMemoryTransport();
  worker = createWorker({ broker, backend, tasks: [generateReport] });
  await worker.start();
  client = createClient({ broker, backend });
});

afterEach(async () => {
  await client.close();
  await worker.stop();
  await dir.remove();
});

it("reports its progress month by month, then writes the report", async () => {
  const result = await client.task(generateReport).delay(2024);
  const value = await result.get({ timeout: 30 });
  expect(value).toMatchObject({ year: 2024, file: `${result.id}.html` });
  expect(value.orders).toBeGreaterThan(12_000);
  const progress = states.filter((s) => s.status === "PROGRESS").map((s) => s.result);
  expect(progress.map((p) => (p as { done: number }).done)).toEqual([
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12,
  ]);
  expect(progress[3]).toEqual({ done: 3, total: 12, step: "March 2024 summed" });
  expect(states.at(-1)?.status).toBe("SUCCESS");
  const html = await readFile(join(dir.path, value.file), "utf8");
  expect(html).toContain("<h1>Annual report 2024</h1>");
});

it("fails with NoDataError at the first month the ledger has not got", async () => {
  const result = await client.task(generateReport).delay(2026);
  const failure = await result.get({ timeout: 30, propagate: false });
  expect(failure).toMatchObject({
    excType: "NoDataError",
    excMessage: "no sales data for July 2026: the ledger covers January 2019 to June 2026",
  });
  const last = states.filter((s) => s.status === "PROGRESS").at(-1)?.result;
  expect(last).toMatchObject({ done: 6, total: 12 });
});
