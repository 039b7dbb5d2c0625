import { resolve } from "node:path";
import Database from "better-sqlite3";
import { BUSY_TIMEOUT_MS, closedError, configError, mapSqliteError } from "./errors.ts";

export interface ConnectionOptions<S> {
  /** The database file, as the user gave it. */
  path: string;
  /** What the connection is for, in errors: "transport", "result backend". */
  what: string;
  /** Idempotent DDL (`CREATE ... IF NOT EXISTS`), run on every open. */
  schema: string;
  /** Prepares the statements once per open; `use()` hands them out. */
  prepare(db: Database.Database): S;
}

/** One lazily opened better-sqlite3 connection whose native errors come out as `CeleryTsError`s. */
export interface Connection<S> {
  /** The absolute path of the database file. */
  readonly path: string;
  readonly closed: boolean;
  /** Opens on first use, then runs `work`; throws `CLOSED` after `close()`. */
  use<T>(work: (statements: S) => T): T;
  /** Idempotent. */
  close(): void;
}

export function createConnection<S extends object>(options: ConnectionOptions<S>): Connection<S> {
  if (options.path === "" || options.path === ":memory:") {
    // An in-memory database is private to one connection: no other process could share it.
    throw configError(
      "the SQLite path must be a file; for an in-process broker or backend use memory:// instead",
    );
  }
  const path = resolve(options.path);
  let opened: { db: Database.Database; statements: S } | undefined;
  let closed = false;

  const open = (): { db: Database.Database; statements: S } => {
    const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    try {
      // WAL lets readers run beside the one writer (other processes included); NORMAL is safe
      // with WAL and skips an fsync per commit.
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
      db.exec(options.schema);
      const statements = options.prepare(db);
      return { db, statements };
    } catch (error) {
      db.close();
      throw error;
    }
  };

  return {
    path,
    get closed() {
      return closed;
    },
    use(work) {
      if (closed) throw closedError(options.what);
      try {
        opened ??= open();
        return work(opened.statements);
      } catch (error) {
        throw mapSqliteError(error, path);
      }
    },
    close() {
      closed = true;
      opened?.db.close();
      opened = undefined;
    },
  };
}
