import { join } from "node:path";
import { backendConformance, transportConformance } from "@celery-ts/testing";
import { createSqliteBackend, createSqliteTransport } from "../src/index.ts";
import { withRawDb } from "./support/raw-db.ts";
import { useTempDir } from "./support/temp-dir.ts";

const LEASE_MS = 1_000;
const POLL_MS = 50;

// Every connection of a test opens the same file in that test's own directory: broker and
// results share it, as they may in an application.
const dir = useTempDir();
const file = (): string => join(dir(), "celery.db");

transportConformance("sqlite", {
  create: () => createSqliteTransport({ path: file(), leaseMs: LEASE_MS, pollIntervalMs: POLL_MS }),
  async injectRaw(queue, raw) {
    withRawDb(file(), (db) =>
      db.run("INSERT INTO celery_ts_messages (queue, payload) VALUES (?, ?)", queue, raw),
    );
  },
  redeliveryWithinMs: LEASE_MS + POLL_MS,
});

backendConformance("sqlite", {
  create: () => createSqliteBackend({ path: file(), pollIntervalMs: POLL_MS }),
});
