import {
  isCeleryTsError,
  storeIncrementBy,
  storeTtlMs,
  type CompareAndSetOptions,
  type CoordinationStore,
  type RecordedWrite,
  type Logger,
  type StoreEntry,
} from "@celery-ts/core";
import { checkFenceToken, closedError, configError } from "@celery-ts/core/driver";
import {
  postgresAtomicPublisher,
  type MessageColumns,
  type TransportTable,
} from "./internal/atomic-publish.ts";
import { Database, PKG, quoteSchema } from "./internal/database.ts";

export interface PostgresStoreOptions {
  /** The database, as a libpq URL. It may be the broker's. @default "postgres://127.0.0.1:5432/postgres" */
  url?: string;
  /** The schema of the `celery_ts_store` table, created if missing. @default "public" */
  schema?: string;
  /** Where lost idle connections are reported. @default silentLogger */
  logger?: Logger;
}

// expires_at: epoch milliseconds by the server's clock, or NULL: never. An expired row is absent
// for every operation; rows are deleted when a write takes them over, and by a periodic sweep.
// Keys sort and compare by code point (COLLATE "C"), as JavaScript strings do.
const ddl = (t: string, schema: string): string => `
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${t} (
  key text COLLATE "C" PRIMARY KEY,
  value text NOT NULL,
  expires_at bigint
)`;

/** The server's clock in epoch milliseconds: expiry is judged by the store, not by its clients. */
const NOW = "(extract(epoch from now()) * 1000)::bigint";
const live = (row: string): string => `(${row}.expires_at IS NULL OR ${row}.expires_at > ${NOW})`;

/** Expired rows are swept at most this often, on a write. */
const SWEEP_INTERVAL_MS = 60_000;

// SQLSTATE of a value that is not a whole number, or one out of bigint's range.
const NOT_A_COUNTER = /^(22P02|22003)$/;

/** The statements, over the table `t`; each is one atomic statement on the server. */
function statements(t: string) {
  // The fence counter's row is read FOR SHARE: an increment under way is waited for (and then
  // seen), and one that comes later waits until this write is committed. `$4`: the fence key or
  // NULL; `$5`: its token as text ("0" is what an absent counter holds).
  const fenced = `WITH fence AS (SELECT value FROM ${t} f WHERE f.key = $4 AND ${live("f")} FOR SHARE),
    fence_ok AS (SELECT $4::text IS NULL OR COALESCE((SELECT value FROM fence), '0') = $5::text AS ok)`;
  const create = `INSERT INTO ${t} AS s (key, value, expires_at)
      SELECT $1, $2, ${NOW} + $3::bigint FROM fence_ok WHERE ok
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
      WHERE NOT ${live("s")} RETURNING 1`;
  const replace = `UPDATE ${t} s SET value = $2, expires_at = ${NOW} + $3::bigint
      WHERE s.key = $1 AND s.value = $6 AND ${live("s")} AND (SELECT ok FROM fence_ok)
      RETURNING 1`;
  return {
    get: `SELECT value FROM ${t} s WHERE s.key = $1 AND ${live("s")}`,
    ttl: `SELECT s.expires_at - ${NOW} AS ms FROM ${t} s WHERE s.key = $1 AND ${live("s")}`,
    // Inserts, or takes over an expired row.
    setIfAbsent: `INSERT INTO ${t} AS s (key, value, expires_at) VALUES ($1, $2, ${NOW} + $3::bigint)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
      WHERE NOT ${live("s")} RETURNING 1`,
    createFenced: `${fenced} ${create}`,
    replaceFenced: `${fenced} ${replace}`,
    /**
     * createFenced or replaceFenced, and, only when it wrote, the transport's insert of a message
     * into `m` and its NOTIFY on `channel`: one statement, so both or neither. The message's
     * columns and the channel come after the compare-and-set's parameters.
     */
    publishIfSet(m: string, expected: boolean): string {
      const p = (i: number): string => `$${(expected ? 7 : 6) + i}`;
      return `${fenced}, rec AS (${expected ? replace : create}),
        m AS (INSERT INTO ${m} (queue, priority, available_at, payload)
          SELECT ${p(0)}::text, ${p(1)}::smallint, ${p(2)}::bigint, ${p(3)}::text FROM rec
          RETURNING queue)
        SELECT pg_notify(${p(4)}::text, queue) FROM m`;
    },
    deleteIfEquals: `DELETE FROM ${t} s WHERE s.key = $1 AND s.value = $2 AND ${live("s")}`,
    list: `SELECT key, value FROM ${t} s WHERE starts_with(s.key, $1) AND ${live("s")} ORDER BY key`,
    // A live counter moves by $2 and keeps its expiry (or takes $3 if it has none); an absent or
    // expired one starts again. A value that is not a whole number fails the cast (22P02).
    increment: `INSERT INTO ${t} AS s (key, value, expires_at) VALUES ($1, $2::bigint::text, ${NOW} + $3::bigint)
      ON CONFLICT (key) DO UPDATE SET
        value = CASE WHEN ${live("s")}
          THEN ((CASE WHEN s.value ~ '^-?[0-9]+$' THEN s.value ELSE 'x' || s.value END)::bigint
                + $2::bigint)::text
          ELSE excluded.value END,
        expires_at = CASE WHEN ${live("s")} THEN COALESCE(s.expires_at, excluded.expires_at)
          ELSE excluded.expires_at END
      RETURNING value`,
    sweep: `DELETE FROM ${t} s WHERE s.expires_at <= ${NOW}`,
  };
}

type Statements = ReturnType<typeof statements>;

/** Deletes expired rows now and then (on writes), so that keys written once do not pile up. */
function sweeper(db: Database, sql: Statements): () => Promise<void> {
  let nextSweepAt = 0;
  return async () => {
    const now = Date.now();
    if (now < nextSweepAt) return;
    nextSweepAt = now + SWEEP_INTERVAL_MS;
    await db.query("deleting expired keys", sql.sweep);
  };
}

/** Moves a counter by `by`; a stored value that is not a whole number is a `CONFIG` error. */
async function incrementCounter(
  db: Database,
  sql: Statements,
  key: string,
  by: number,
  ttlMs: number | null,
): Promise<number> {
  let value: string | undefined;
  try {
    const { rows } = await db.query<{ value: string }>("incrementing a counter", sql.increment, [
      key,
      by,
      ttlMs,
    ]);
    value = rows[0]?.value;
  } catch (error) {
    const code = isCeleryTsError(error)
      ? String((error.cause as { code?: unknown } | undefined)?.code ?? "")
      : "";
    if (!NOT_A_COUNTER.test(code)) throw error;
  }
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n)) {
    throw configError(
      PKG,
      `the value at ${JSON.stringify(key)} is not a counter: increment() only works on keys ` +
        "that increment() created",
    );
  }
  return n;
}

/** The compare-and-set statements' first five parameters, checked. */
function casValues(key: string, value: string, cas: CompareAndSetOptions): unknown[] {
  const ttlMs = storeTtlMs(cas, PKG) ?? null;
  checkFenceToken(cas, PKG);
  const fence = cas.fence;
  return [key, value, ttlMs, fence?.key ?? null, fence ? String(fence.token) : null];
}

/**
 * The record's compare-and-set and, only when it wrote, the insert of the message into the
 * transport's table `m`: one statement. Resolves to whether it wrote.
 */
async function publishIfSet(
  db: Database,
  sql: Statements,
  m: TransportTable,
  columns: MessageColumns,
  { key, expected, value, fence }: RecordedWrite,
): Promise<boolean> {
  const values = casValues(key, value, fence ? { fence } : {});
  if (expected !== undefined) values.push(expected);
  const text = sql.publishIfSet(m.table, expected !== undefined);
  const { rows } = await db.query("publishing a tick", text, [...values, ...columns, m.channel]);
  return rows.length === 1;
}

/**
 * The coordination store in a PostgreSQL table, `celery_ts_store` in the given schema: one row per
 * key. Each operation is one statement, atomic on the server; expiry is judged by the server's
 * clock, so the clocks of the processes sharing it need not agree.
 */
export function createPostgresStore(options: PostgresStoreOptions = {}): CoordinationStore {
  const schema = quoteSchema(options.schema ?? "public");
  const t = `${schema}.celery_ts_store`;
  const sql = statements(t);
  const url = options.url ?? "postgres://127.0.0.1:5432/postgres";
  const db = new Database({
    url,
    what: "PostgreSQL coordination store",
    ddl: ddl(t, schema),
    channel: `celery_ts_store.${options.schema ?? "public"}`,
    ...(options.logger && { logger: options.logger }),
  });
  let closed = false;
  const ensureOpen = (): void => {
    if (closed) throw closedError(PKG, "PostgreSQL coordination store");
  };
  const maybeSweep = sweeper(db, sql);
  const changed = async (doing: string, text: string, values: unknown[]): Promise<boolean> => {
    const { rowCount } = await db.query(doing, text, values);
    return rowCount === 1;
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
      await db.close();
    },
    async get(key) {
      ensureOpen();
      const { rows } = await db.query<{ value: string }>("reading a key", sql.get, [key]);
      return rows[0]?.value;
    },
    async ttl(key) {
      ensureOpen();
      const { rows } = await db.query<{ ms: string | null }>("reading a key's ttl", sql.ttl, [key]);
      const row = rows[0];
      if (!row) return undefined;
      return row.ms === null ? Infinity : Number(row.ms) / 1000;
    },
    async setIfAbsent(key, value, ttl) {
      ensureOpen();
      const ttlMs = storeTtlMs(ttl, PKG) ?? null;
      await maybeSweep();
      return changed("setting a key", sql.setIfAbsent, [key, value, ttlMs]);
    },
    async compareAndSet(key, expected, value, cas = {}) {
      ensureOpen();
      const values = casValues(key, value, cas);
      return expected === undefined
        ? changed("setting a key", sql.createFenced, values)
        : changed("setting a key", sql.replaceFenced, [...values, expected]);
    },
    // A PostgreSQL transport on this database: its insert and a compare-and-set, in one statement.
    atomicPublisher: (transport) =>
      postgresAtomicPublisher(url, transport, (m, columns, record) => {
        ensureOpen();
        return publishIfSet(db, sql, m, columns, record);
      }),
    async deleteIfEquals(key, expected) {
      ensureOpen();
      return changed("deleting a key", sql.deleteIfEquals, [key, expected]);
    },
    async list(prefix) {
      ensureOpen();
      const { rows } = await db.query<StoreEntry>("listing keys", sql.list, [prefix]);
      return rows.map(({ key, value }) => ({ key, value }));
    },
    async increment(key, increment) {
      ensureOpen();
      const by = storeIncrementBy(increment, PKG);
      const ttlMs = storeTtlMs(increment, PKG) ?? null;
      await maybeSweep();
      return incrementCounter(db, sql, key, by, ttlMs);
    },
  };
}
