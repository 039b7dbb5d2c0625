import Database from "better-sqlite3";

/** SQL on a plain connection, as an operator's tool or a foreign producer would run it. */
export interface RawDb {
  run(sql: string, ...params: unknown[]): void;
  all(sql: string, ...params: unknown[]): unknown[];
}

// better-sqlite3 rather than node:sqlite: two SQLite libraries in one process break each other's
// POSIX locks and corrupt the file.

/** Runs `work` on a connection of its own to the database file, then closes it. */
export function withRawDb<T>(path: string, work: (db: RawDb) => T): T {
  const db = new Database(path);
  const prepare = (sql: string) => db.prepare(sql);
  try {
    return work({
      run: (sql, ...params) => void prepare(sql).run(...params),
      all: (sql, ...params) => prepare(sql).all(...params),
    });
  } finally {
    db.close();
  }
}
