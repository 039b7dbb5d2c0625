import { resolve } from "node:path";
import type Database from "better-sqlite3";
import type { Topic } from "./change-feed.ts";
import { closedError, configError, mapSqliteError } from "./errors.ts";
import { acquireSharedDb, retryWhileBusy, type SharedDb } from "./shared-db.ts";

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

/**
 * A lazily opened use of the process's connection to a database file (shared by every component
 * on that file, see shared-db.ts), whose native errors come out as `CeleryTsError`s.
 */
export interface Connection<S> {
  /** The absolute path of the database file. */
  readonly path: string;
  readonly closed: boolean;
  /** Opens on first use, then runs `work`; throws `CLOSED` after `close()`. */
  use<T>(work: (statements: S) => T): T;
  /**
   * Runs `work` in the file's next group commit (see `SharedDb.write`); resolves once committed.
   * With `notify`, that topic's listeners here, and all in other processes, are woken after it.
   */
  write<T>(work: (statements: S) => T, options?: { notify?: Topic }): Promise<T>;
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
  let opened: { shared: SharedDb; statements: S } | undefined;
  let closed = false;

  const open = (): { shared: SharedDb; statements: S } => {
    const shared = acquireSharedDb(path);
    try {
      retryWhileBusy(() => shared.db.exec(options.schema));
      return { shared, statements: options.prepare(shared.db) };
    } catch (error) {
      shared.release();
      throw error;
    }
  };
  const statements = (): S => {
    if (closed) throw closedError(options.what);
    try {
      opened ??= open();
      return opened.statements;
    } catch (error) {
      throw mapSqliteError(error, path);
    }
  };

  return {
    path,
    get closed() {
      return closed;
    },
    use(work) {
      const s = statements();
      try {
        return retryWhileBusy(() => work(s));
      } catch (error) {
        throw mapSqliteError(error, path);
      }
    },
    async write(work, { notify } = {}) {
      const s = statements();
      return opened!.shared.write(() => work(s), notify);
    },
    close() {
      closed = true;
      opened?.shared.release();
      opened = undefined;
    },
  };
}
