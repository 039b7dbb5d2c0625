import type { PreparedStore } from "@celery-ts/core";

/** Where a prepared result's SQLite write is kept: a registered symbol, so duplicate installs agree. */
const WRITE = Symbol.for("celery-ts.sqlite.prepared-store");

/** What storing one result writes, for a transport on the same file to run in its ack's transaction. */
export interface ResultWrite {
  /** The absolute path of the database file the backend writes to. */
  path: string;
  /**
   * The backend's write of the result (its upsert), run inside the caller's transaction on the
   * process's one connection to `path`: the ack and the result commit together.
   */
  run(): void;
}

/** A result the SQLite backend prepared, for a SQLite transport on `write.path` to write. */
export function prepareResult(taskId: string, write: ResultWrite): PreparedStore {
  return { taskId, [WRITE]: write } as PreparedStore;
}

/** The write of a result prepared by a SQLite backend for the file at `path`, else undefined. */
export function resultWriteFor(
  result: PreparedStore | undefined,
  path: string,
): ResultWrite | undefined {
  const write = (result as { [WRITE]?: ResultWrite } | undefined)?.[WRITE];
  return write?.path === path ? write : undefined;
}
