import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryBroker, createMemoryBackend, createMemoryTransport } from "@celery-ts/core";
import { createSqliteBackend, createSqliteTransport } from "@celery-ts/sqlite";
import { workerConformance } from "@celery-ts/testing";
import { afterAll } from "vitest";
import { createWorker } from "../src/index.ts";
import { insertRaw } from "./harness.ts";

// The worker's behaviour lives in @celery-ts/testing's worker suite, which every driver package
// runs on its own broker; here it runs on the in-memory and SQLite drivers.
const broker = new MemoryBroker();
workerConformance("memory", {
  createWorker,
  createTransport: () => createMemoryTransport({ broker }),
  createBackend: () => createMemoryBackend(),
  injectRaw: async (queue, raw) => broker.push(queue, raw),
});

const dir = mkdtempSync(join(tmpdir(), "celery-ts-worker-"));
const path = join(dir, "celery.db");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
workerConformance("sqlite", {
  createWorker,
  // A one-second lease, polled every 20 ms: a dead consumer's message comes back within a test.
  createTransport: () => createSqliteTransport({ path, visibilityTimeout: 1, pollInterval: 0.02 }),
  createBackend: () => createSqliteBackend({ path, pollInterval: 0.02 }),
  injectRaw: async (queue, raw) => {
    // Opening a transport creates the tables, as a worker does before a foreign producer writes.
    const transport = createSqliteTransport({ path });
    await transport.connect();
    await transport.close();
    insertRaw(path, queue, [raw]);
  },
});
