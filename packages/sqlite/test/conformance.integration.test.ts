import { join } from "node:path";
import { backendConformance, transportConformance } from "@celery-ts/testing";
import { createSqliteBackend, createSqliteTransport } from "../src/index.ts";
import { withRawDb } from "./support/raw-db.ts";
import { useTempDir } from "./support/temp-dir.ts";

const VISIBILITY_TIMEOUT = 1;
const POLL_INTERVAL = 0.05;

// Every connection of a test opens the same file in that test's own directory: broker and
// results share it, as they may in an application.
const dir = useTempDir();
const file = (): string => join(dir(), "celery.db");

transportConformance("sqlite", {
  create: (options) =>
    createSqliteTransport({
      ...options,
      path: file(),
      visibilityTimeout: VISIBILITY_TIMEOUT,
      pollInterval: POLL_INTERVAL,
    }),
  // The change feed alone: a lost wake-up would wait a minute for the poll.
  createWakeOnly: () =>
    createSqliteTransport({
      path: file(),
      visibilityTimeout: VISIBILITY_TIMEOUT,
      pollInterval: 60,
    }),
  async injectRaw(queue, raw) {
    withRawDb(file(), (db) =>
      db.run("INSERT INTO celery_ts_messages (queue, payload) VALUES (?, ?)", queue, raw),
    );
  },
});

backendConformance("sqlite", {
  create: () => createSqliteBackend({ path: file(), pollInterval: POLL_INTERVAL }),
});
