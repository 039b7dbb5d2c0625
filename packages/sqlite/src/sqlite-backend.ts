import {
  CeleryTsError,
  createResultWaiters,
  decodeJson,
  encodeJson,
  isCeleryTsError,
  isReadyState,
  type ResultBackend,
  type ResultMeta,
  type StoreOptions,
  type WaitOptions,
} from "@celery-ts/core";
import type Database from "better-sqlite3";
import { notifyChange, subscribeToChanges } from "./internal/change-feed.ts";
import { createConnection } from "./internal/connection.ts";
import { closedError, PKG } from "./internal/errors.ts";
import { durationOption } from "./internal/options.ts";

export interface SqliteBackendOptions {
  /**
   * The database file, created if missing (its directory must exist). Relative to the working
   * directory unless absolute. It may be the broker's file.
   */
  path: string;
  /** Results are forgotten after this long, unless `store()` says otherwise. @default 86_400_000 */
  expiresInMs?: number;
  /**
   * How often pending `waitFor()` calls look for results stored by other processes (one query for
   * all of them). A store from this process wakes them at once.
   * @default 50
   */
  pollIntervalMs?: number;
}

// `ready` repeats isReadyState(meta.status), so waiters can filter in SQL without parsing meta.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS celery_ts_results (
  task_id TEXT PRIMARY KEY,
  meta TEXT NOT NULL,
  ready INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS celery_ts_results_expiry ON celery_ts_results (expires_at);
`;

/** Expired rows are deleted at most this often, on a store. */
const SWEEP_INTERVAL_MS = 60_000;

interface Row {
  task_id: string;
  meta: string;
}

function prepare(db: Database.Database) {
  return {
    upsert: db.prepare<[string, string, number, number]>(
      `INSERT INTO celery_ts_results (task_id, meta, ready, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (task_id) DO UPDATE
       SET meta = excluded.meta, ready = excluded.ready, expires_at = excluded.expires_at`,
    ),
    get: db.prepare<[string], Row & { expires_at: number }>(
      "SELECT task_id, meta, expires_at FROM celery_ts_results WHERE task_id = ?",
    ),
    readyAmong: db.prepare<[string, number], Row>(
      `SELECT task_id, meta FROM celery_ts_results
       WHERE task_id IN (SELECT value FROM json_each(?)) AND ready = 1 AND expires_at > ?`,
    ),
    forget: db.prepare<[string]>("DELETE FROM celery_ts_results WHERE task_id = ?"),
    // The expiry guard keeps a lazy delete from racing a store that just renewed the row.
    forgetExpired: db.prepare<[string, number]>(
      "DELETE FROM celery_ts_results WHERE task_id = ? AND expires_at <= ?",
    ),
    sweep: db.prepare<[number]>("DELETE FROM celery_ts_results WHERE expires_at <= ?"),
  };
}

/** Results in a SQLite file, readable by every process that opens it. */
export function createSqliteBackend(options: SqliteBackendOptions): ResultBackend {
  const defaultExpiry = durationOption("expiresInMs", options.expiresInMs, 86_400_000);
  const pollIntervalMs = durationOption("pollIntervalMs", options.pollIntervalMs, 50);
  const connection = createConnection({
    path: options.path,
    what: "result backend",
    schema: SCHEMA,
    prepare,
  });
  /** Pending waitFor() calls by task id: one poll serves them all. */
  const waiters = createResultWaiters();
  let pollTimer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let nextSweepAt = 0;

  const decode = (row: Row): ResultMeta => decodeJson(row.meta) as ResultMeta;

  const readyMeta = (taskId: string): ResultMeta | undefined => {
    const row = connection.use((s) => s.readyAmong.get(JSON.stringify([taskId]), Date.now()));
    return row && decode(row);
  };

  const stopPolling = (): void => {
    clearTimeout(pollTimer);
    pollTimer = undefined;
    unsubscribe?.();
    unsubscribe = undefined;
  };

  const poll = (): void => {
    clearTimeout(pollTimer);
    pollTimer = undefined;
    if (waiters.keys().length === 0) return stopPolling();
    try {
      const rows = connection.use((s) =>
        s.readyAmong.all(JSON.stringify(waiters.keys()), Date.now()),
      );
      for (const row of rows) waiters.resolve(row.task_id, () => decode(row));
    } catch (error) {
      if (!isCeleryTsError(error) || !error.retryable) waiters.rejectAll(error);
    }
    if (waiters.keys().length === 0) return stopPolling();
    pollTimer = setTimeout(poll, pollIntervalMs);
  };

  const startPolling = (): void => {
    unsubscribe ??= subscribeToChanges(connection.path, poll);
    pollTimer ??= setTimeout(poll, pollIntervalMs);
  };

  return {
    name: "sqlite",
    async connect() {
      connection.use(() => undefined);
    },
    async close() {
      if (connection.closed) return;
      stopPolling();
      connection.close();
      waiters.rejectAll(closedError("result backend"));
    },
    async store(taskId: string, meta: ResultMeta, store: StoreOptions = {}) {
      const expiresInMs = durationOption("expiresInMs", store.expiresInMs, defaultExpiry);
      const encoded = encodeJson(meta);
      const now = Date.now();
      connection.use((s) => {
        s.upsert.run(taskId, encoded, isReadyState(meta.status) ? 1 : 0, now + expiresInMs);
        if (now >= nextSweepAt) {
          s.sweep.run(now);
          nextSweepAt = now + SWEEP_INTERVAL_MS;
        }
      });
      notifyChange(connection.path);
    },
    async get(taskId) {
      return connection.use((s) => {
        const row = s.get.get(taskId);
        if (!row) return undefined;
        const now = Date.now();
        if (row.expires_at > now) return decode(row);
        s.forgetExpired.run(taskId, now);
        return undefined;
      });
    },
    async waitFor(taskId: string, options: WaitOptions) {
      const ready = readyMeta(taskId);
      if (ready) return ready;
      const waiting = waiters.wait(taskId, {
        ...options,
        timeoutError: () =>
          new CeleryTsError(
            "TIMEOUT",
            `no result for task ${taskId} within ${options.timeoutMs} ms`,
            { pkg: PKG, retryable: true },
          ),
      });
      startPolling();
      return waiting;
    },
    async forget(taskId) {
      connection.use((s) => s.forget.run(taskId));
    },
  };
}
