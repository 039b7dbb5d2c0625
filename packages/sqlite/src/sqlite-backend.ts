import {
  encodeJson,
  isCeleryTsError,
  isReadyState,
  silentLogger,
  type Logger,
  type ResultBackend,
  type ResultMeta,
  type StoreOptions,
} from "@celery-ts/core";
import { durationOption, toMs } from "@celery-ts/core/driver";
import type Database from "better-sqlite3";
import { sqliteChords } from "./internal/chords.ts";
import { createConnection } from "./internal/connection.ts";
import { closedError, PKG } from "./internal/errors.ts";
import { decodeRow, ResultPoller, type ResultRow } from "./internal/result-poller.ts";

export interface SqliteBackendOptions {
  /**
   * The database file, created if missing (its directory must exist). Relative to the working
   * directory unless absolute. It may be the broker's file.
   */
  path: string;
  /**
   * Seconds after which results are forgotten, unless `store()` says otherwise (Celery's
   * `result_expires`). @default 86400 (one day)
   */
  expires?: number;
  /**
   * Seconds between looks for results stored by other processes by pending `waitFor()` calls
   * (one query for all of them). A store from this process wakes them at once.
   * @default 0.05
   */
  pollInterval?: number;
  /**
   * Where the backend reports what it recovers from (results it could not read for a while:
   * a locked or busy file). A worker or the CLI passes its own for a backend built from a URL.
   * @default silentLogger
   */
  logger?: Logger;
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

type Row = ResultRow;

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

const expiryOption = (value: number | undefined, fallback: number): number =>
  durationOption(PKG, "expires", value, fallback);

/**
 * The waiters' reads: one that fails with a retryable error (a file another connection keeps
 * locked) fails a new wait and is tried again by the poll of pending ones; the first failure is
 * logged once, and the recovery once.
 */
function readsLogged(logger: Logger, read: (taskIds: string[]) => Row[]) {
  let failing = false;
  return (taskIds: string[]): Row[] => {
    try {
      const rows = read(taskIds);
      if (failing) logger.info(`${PKG} result backend: reading results works again`);
      failing = false;
      return rows;
    } catch (error) {
      if (!failing && isCeleryTsError(error) && error.retryable) {
        failing = true;
        logger.warn(
          `${PKG} result backend: could not read results; waits look again at their next poll`,
          {
            error: String(error),
          },
        );
      }
      throw error;
    }
  };
}

/** Results in a SQLite file, readable by every process that opens it. */
export function createSqliteBackend(options: SqliteBackendOptions): ResultBackend {
  const defaultExpiry = expiryOption(options.expires, 86_400);
  const connection = createConnection({
    path: options.path,
    what: "result backend",
    schema: SCHEMA,
    prepare,
  });
  const {
    chords,
    groups,
    connection: chordConnection,
  } = sqliteChords(options.path, toMs(defaultExpiry));
  const readyAmong = readsLogged(options.logger ?? silentLogger, (taskIds: string[]): Row[] =>
    connection.use((s) => s.readyAmong.all(JSON.stringify(taskIds), Date.now())),
  );
  const poller = new ResultPoller({
    path: connection.path,
    pollIntervalMs: toMs(durationOption(PKG, "pollInterval", options.pollInterval, 0.05)),
    readyAmong,
  });
  let nextSweepAt = 0;

  return {
    name: "sqlite",
    chords,
    groups,
    async connect() {
      connection.use(() => undefined);
    },
    async close() {
      if (connection.closed) return;
      connection.close();
      chordConnection.close();
      poller.close(closedError("result backend"));
    },
    async store(taskId: string, meta: ResultMeta, store: StoreOptions = {}) {
      const expiresAt = Date.now() + toMs(expiryOption(store.expires, defaultExpiry));
      const encoded = encodeJson(meta);
      const now = Date.now();
      const sweep = now >= nextSweepAt;
      if (sweep) nextSweepAt = now + SWEEP_INTERVAL_MS;
      // In the file's group commit: the results and acks of one event-loop turn share one write.
      await connection.write(
        (s) => {
          s.upsert.run(taskId, encoded, isReadyState(meta.status) ? 1 : 0, expiresAt);
          if (sweep) s.sweep.run(now);
        },
        { notify: "results" },
      );
    },
    async get(taskId) {
      return connection.use((s) => {
        const row = s.get.get(taskId);
        if (!row) return undefined;
        const now = Date.now();
        if (row.expires_at > now) return decodeRow(row);
        s.forgetExpired.run(taskId, now);
        return undefined;
      });
    },
    async waitFor(taskId, waitOptions) {
      return poller.wait(taskId, waitOptions);
    },
    async forget(taskId) {
      connection.use((s) => s.forget.run(taskId));
    },
  };
}
