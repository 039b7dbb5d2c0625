import {
  storeIncrementBy,
  storeTtlMs,
  type CompareAndSetOptions,
  type CoordinationStore,
  type IncrementOptions,
} from "@celery-ts/core";
import { checkFenceToken } from "@celery-ts/core/driver";
import type Database from "better-sqlite3";
import { sqliteAtomicPublisher, type MessageRow } from "./internal/atomic-publish.ts";
import { createConnection } from "./internal/connection.ts";
import { configError, PKG } from "./internal/errors.ts";
import { INSERT_MESSAGE, SCHEMA as MESSAGES_SCHEMA } from "./internal/statements.ts";

export interface SqliteStoreOptions {
  /**
   * The database file, created if missing (its directory must exist). Relative to the working
   * directory unless absolute. It may be the broker's file.
   */
  path: string;
}

// expires_at: epoch milliseconds, or NULL: never. An expired row is absent for every operation;
// rows are deleted lazily, when a write finds them, and by a periodic sweep.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS celery_ts_store (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER
);
`;

/** Expired rows are swept at most this often, on a write. */
const SWEEP_INTERVAL_MS = 60_000;

const LIVE = "(expires_at IS NULL OR expires_at > @now)";

interface Params {
  key: string;
  value: string;
  expected: string;
  expiresAt: number | null;
  now: number;
}

type Fence = { key: string; token: number };

/**
 * A compare-and-set and the transport's message insert in one IMMEDIATE transaction: both or
 * neither. The insert is prepared on first use (the messages table created if missing).
 */
function preparePublishIfSet(
  db: Database.Database,
  compareAndSet: (p: Omit<Params, "expected">, expected?: string, fence?: Fence) => boolean,
) {
  let insertMessage: Database.Statement<MessageRow> | undefined;
  const transaction = db.transaction(
    (
      p: Omit<Params, "expected">,
      expected: string | undefined,
      fence: Fence | undefined,
      row: MessageRow,
    ) => {
      if (!compareAndSet(p, expected, fence)) return false;
      insertMessage!.run(...row);
      return true;
    },
  );
  return (...args: Parameters<typeof transaction>): boolean => {
    if (!insertMessage) {
      db.exec(MESSAGES_SCHEMA);
      insertMessage = db.prepare<MessageRow>(INSERT_MESSAGE);
    }
    return transaction.immediate(...args);
  };
}

function prepare(db: Database.Database) {
  const get = db.prepare<Pick<Params, "key" | "now">, { value: string; expires_at: number | null }>(
    `SELECT value, expires_at FROM celery_ts_store WHERE key = @key AND ${LIVE}`,
  );
  // Inserts, or takes over an expired row: one statement, so atomic across processes.
  const insertIfAbsent = db.prepare<Omit<Params, "expected">>(
    `INSERT INTO celery_ts_store (key, value, expires_at) VALUES (@key, @value, @expiresAt)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
     WHERE celery_ts_store.expires_at IS NOT NULL AND celery_ts_store.expires_at <= @now`,
  );
  const replace = db.prepare<Params>(
    `UPDATE celery_ts_store SET value = @value, expires_at = @expiresAt
     WHERE key = @key AND value = @expected AND ${LIVE}`,
  );
  const deleteIfEquals = db.prepare<Omit<Params, "value" | "expiresAt">>(
    `DELETE FROM celery_ts_store WHERE key = @key AND value = @expected AND ${LIVE}`,
  );
  const list = db.prepare<
    { prefix: string; length: number; now: number },
    { key: string; value: string }
  >(
    `SELECT key, value FROM celery_ts_store
     WHERE substr(key, 1, @length) = @prefix AND ${LIVE} ORDER BY key`,
  );
  const upsert = db.prepare<Omit<Params, "expected" | "now">>(
    `INSERT INTO celery_ts_store (key, value, expires_at) VALUES (@key, @value, @expiresAt)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
  );
  const sweep = db.prepare<{ now: number }>(
    "DELETE FROM celery_ts_store WHERE expires_at IS NOT NULL AND expires_at <= @now",
  );

  const counterValue = (key: string, now: number): { n: number; expiresAt: number | null } => {
    const row = get.get({ key, now });
    if (!row) return { n: 0, expiresAt: null };
    const n = Number(row.value);
    if (!/^-?\d+$/.test(row.value) || !Number.isSafeInteger(n)) {
      throw configError(
        `the value at ${JSON.stringify(key)} is not a counter: increment() only works on keys ` +
          "that increment() created",
      );
    }
    return { n, expiresAt: row.expires_at };
  };

  // Read-modify-write steps run in IMMEDIATE transactions: the write lock is taken first, so no
  // other process can change the rows between the read and the write.
  const compareAndSet = db.transaction(
    (
      p: Omit<Params, "expected">,
      expected: string | undefined,
      fence?: { key: string; token: number },
    ) => {
      if (fence && counterValue(fence.key, p.now).n !== fence.token) return false;
      if (expected === undefined) return insertIfAbsent.run(p).changes === 1;
      return replace.run({ ...p, expected }).changes === 1;
    },
  );
  const increment = db.transaction(
    (key: string, by: number, ttlMs: number | undefined, now: number) => {
      const current = counterValue(key, now);
      const n = current.n + by;
      const expiresAt = current.expiresAt ?? (ttlMs === undefined ? null : now + ttlMs);
      upsert.run({ key, value: String(n), expiresAt });
      return n;
    },
  );

  return {
    get,
    insertIfAbsent,
    deleteIfEquals,
    list,
    sweep,
    compareAndSet: compareAndSet.immediate,
    publishIfSet: preparePublishIfSet(db, compareAndSet),
    increment: increment.immediate,
  };
}

function checkFence(cas: CompareAndSetOptions): void {
  checkFenceToken(cas, PKG);
}

/**
 * The coordination store in a SQLite file: one table, `celery_ts_store`. Every process that opens
 * the file shares it; each operation is one statement or one IMMEDIATE transaction, so it is
 * atomic across processes. Expiry is judged by the clock of the process that asks: the processes
 * sharing a file share a machine, and so a clock.
 */
export function createSqliteStore(options: SqliteStoreOptions): CoordinationStore {
  const connection = createConnection({
    path: options.path,
    what: "coordination store",
    schema: SCHEMA,
    prepare,
  });
  let nextSweepAt = 0;
  const expiry = (now: number, ttl: { ttl?: number } | undefined): number | null => {
    const ttlMs = storeTtlMs(ttl, PKG);
    return ttlMs === undefined ? null : now + ttlMs;
  };
  const maybeSweep = (now: number): void => {
    if (now < nextSweepAt) return;
    nextSweepAt = now + SWEEP_INTERVAL_MS;
    connection.use((s) => s.sweep.run({ now }));
  };

  return {
    name: "sqlite",
    async connect() {
      connection.use(() => undefined);
    },
    async close() {
      connection.close();
    },
    async get(key) {
      return connection.use((s) => s.get.get({ key, now: Date.now() })?.value);
    },
    async ttl(key) {
      const now = Date.now();
      const row = connection.use((s) => s.get.get({ key, now }));
      if (!row) return undefined;
      return row.expires_at === null ? Infinity : (row.expires_at - now) / 1000;
    },
    async setIfAbsent(key, value, ttl) {
      const now = Date.now();
      const expiresAt = expiry(now, ttl);
      maybeSweep(now);
      return connection.use(
        (s) => s.insertIfAbsent.run({ key, value, expiresAt, now }).changes === 1,
      );
    },
    async compareAndSet(key, expected, value, cas: CompareAndSetOptions = {}) {
      const now = Date.now();
      const expiresAt = expiry(now, cas);
      checkFence(cas);
      return connection.use((s) =>
        s.compareAndSet({ key, value, expiresAt, now }, expected, cas.fence),
      );
    },
    // A SQLite transport on this file: its insert and a compare-and-set, in one transaction.
    atomicPublisher(transport) {
      return sqliteAtomicPublisher(connection.path, transport, (row, record) => {
        const { key, expected, value, fence } = record;
        checkFence({ ...(fence && { fence }) });
        const p = { key, value, expiresAt: null, now: Date.now() };
        return connection.use((s) => s.publishIfSet(p, expected, fence, row));
      });
    },
    async deleteIfEquals(key, expected) {
      return connection.use(
        (s) => s.deleteIfEquals.run({ key, expected, now: Date.now() }).changes === 1,
      );
    },
    async list(prefix) {
      return connection.use((s) => s.list.all({ prefix, length: prefix.length, now: Date.now() }));
    },
    async increment(key, increment?: IncrementOptions) {
      const by = storeIncrementBy(increment, PKG);
      const ttlMs = storeTtlMs(increment, PKG);
      const now = Date.now();
      maybeSweep(now);
      return connection.use((s) => s.increment(key, by, ttlMs, now));
    },
  };
}
