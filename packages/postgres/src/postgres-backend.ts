import {
  resultTimeoutError,
  createResultWaiters,
  decodeStoredResult,
  encodeJson,
  isReadyState,
  type ResultBackend,
  type ResultMeta,
  type ResultWaiters,
  type Logger,
} from "@celery-ts/core";
import { closedError, durationOption, toMs } from "@celery-ts/core/driver";
import { Database, PKG, quoteSchema } from "./internal/database.ts";

export interface PostgresBackendOptions {
  /** The database, as a libpq URL. @default "postgres://127.0.0.1:5432/postgres" */
  url?: string;
  /** The schema of the `celery_ts_results` table, created if missing. @default "public" */
  schema?: string;
  /** Seconds a result is kept, unless `store()` says otherwise. @default 86400 (one day) */
  expires?: number;
  /**
   * Where the backend reports its connections' losses and recoveries (a worker or the CLI passes
   * its own for a backend built from a URL). @default silentLogger
   */
  logger?: Logger;
}

const ddl = (t: string, schema: string): string => `
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${t} (
  task_id text PRIMARY KEY,
  meta text NOT NULL,
  ready boolean NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS celery_ts_results_expiry ON ${t} (expires_at)`;

/** Expired rows are deleted at most this often, on a store. */
const SWEEP_INTERVAL_MS = 60_000;

const expiryOption = (value: number | undefined, fallback: number): number =>
  durationOption(PKG, "expires", value, fallback);

/** Stores a result (replacing any earlier state); a ready one is announced on `channel`. */
async function upsertResult(
  db: Database,
  t: string,
  channel: string,
  { taskId, meta, expiresAt }: { taskId: string; meta: ResultMeta; expiresAt: number },
): Promise<void> {
  await db.query(
    "storing a result",
    `WITH s AS (
       INSERT INTO ${t} (task_id, meta, ready, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (task_id) DO UPDATE
       SET meta = excluded.meta, ready = excluded.ready, expires_at = excluded.expires_at
       RETURNING task_id, ready)
     SELECT pg_notify($5, task_id) FROM s WHERE ready`,
    [taskId, encodeJson(meta), isReadyState(meta.status), expiresAt, channel],
  );
}

/** Decodes a stored result; a value that is not JSON is a `MALFORMED_MESSAGE` error naming it. */
function decodeRow(taskId: string, meta: string): ResultMeta {
  return decodeStoredResult(meta, `the stored result of task ${taskId}`, PKG);
}

/** Resolves the waiters of the ready results among `ids` (a row that cannot be decoded rejects its own). */
async function settleReady(
  db: Database,
  t: string,
  waiters: ResultWaiters,
  ids: string[],
): Promise<void> {
  if (ids.length === 0) return;
  const { rows } = await db.query<{ task_id: string; meta: string }>(
    "reading results",
    `SELECT task_id, meta FROM ${t} WHERE task_id = ANY($1::text[]) AND ready AND expires_at > $2`,
    [ids, Date.now()],
  );
  for (const row of rows) waiters.resolve(row.task_id, () => decodeRow(row.task_id, row.meta));
}

/**
 * Results in a PostgreSQL table. A ready state is announced with NOTIFY, so `waitFor()` wakes
 * at once, from any process; one LISTEN connection serves every waiter.
 */
export function createPostgresBackend(options: PostgresBackendOptions = {}): ResultBackend {
  const defaultExpiry = expiryOption(options.expires, 86_400);
  const schema = quoteSchema(options.schema ?? "public");
  const t = `${schema}.celery_ts_results`;
  const channel = `celery_ts_results.${options.schema ?? "public"}`;
  const db = new Database({
    url: options.url ?? "postgres://127.0.0.1:5432/postgres",
    what: "PostgreSQL result backend",
    ddl: ddl(t, schema),
    channel,
    ...(options.logger && { logger: options.logger }),
  });
  const waiters = createResultWaiters();
  let closed = false;
  let nextSweepAt = 0;
  let listening: Promise<unknown> | undefined;

  const ensureOpen = (): void => {
    if (closed) throw closedError(PKG, "PostgreSQL result backend");
  };
  const settle = (ids: string[]): Promise<void> => settleReady(db, t, waiters, ids);
  const wake = (taskId: string | undefined): void => {
    const ids = taskId === undefined ? waiters.keys() : waiters.has(taskId) ? [taskId] : [];
    settle(ids).catch((error: unknown) => waiters.rejectAll(error));
  };

  return {
    name: "postgres",
    async connect() {
      ensureOpen();
      await db.ready();
    },
    async close() {
      if (closed) return;
      closed = true;
      waiters.rejectAll(closedError(PKG, "PostgreSQL result backend"));
      await db.close();
    },
    async store(taskId, meta, store = {}) {
      ensureOpen();
      const expires = expiryOption(store.expires, defaultExpiry);
      const now = Date.now();
      await upsertResult(db, t, channel, { taskId, meta, expiresAt: now + toMs(expires) });
      if (now >= nextSweepAt) {
        nextSweepAt = now + SWEEP_INTERVAL_MS;
        await db.query("deleting expired results", `DELETE FROM ${t} WHERE expires_at <= $1`, [
          now,
        ]);
      }
    },
    async get(taskId) {
      ensureOpen();
      const { rows } = await db.query<{ meta: string }>(
        "reading a result",
        `SELECT meta FROM ${t} WHERE task_id = $1 AND expires_at > $2`,
        [taskId, Date.now()],
      );
      return rows[0] && decodeRow(taskId, rows[0].meta);
    },
    async waitFor(taskId, waitOptions) {
      ensureOpen();
      // Listen first, then look: a result stored in between is announced, not missed.
      await (listening ??= db.listen(wake).catch((error: unknown) => {
        listening = undefined;
        throw error;
      }));
      const waiting = waiters.wait(taskId, {
        ...waitOptions,
        timeoutError: () => resultTimeoutError(PKG, taskId, waitOptions.timeout),
      });
      // Handled here too: it may reject (an aborted signal) while the lookup below runs.
      waiting.catch(() => {});
      await settle([taskId]); // if this fails, the waiter ends with its timeout, unobserved
      return waiting;
    },
    async forget(taskId) {
      ensureOpen();
      await db.query("forgetting a result", `DELETE FROM ${t} WHERE task_id = $1`, [taskId]);
    },
  };
}
