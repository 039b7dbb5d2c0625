import { dirname } from "node:path";
import { CeleryTsError, isCeleryTsError } from "@celery-ts/core";
import Database from "better-sqlite3";

export const PKG = "sqlite";

/** How long a statement waits for another connection's write lock before giving up. */
export const BUSY_TIMEOUT_MS = 5_000;

export function configError(message: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("CONFIG", message, { pkg: PKG, cause });
}

export function closedError(what: string): CeleryTsError {
  return new CeleryTsError("CLOSED", `the SQLite ${what} is closed`, { pkg: PKG });
}

/** The primary result code of an extended one: SQLITE_BUSY_SNAPSHOT is a SQLITE_BUSY. */
function primaryCode(code: string): string {
  return code.split("_").slice(0, 2).join("_");
}

/**
 * Maps what better-sqlite3 throws to a `CeleryTsError` that says what to do about it. Our own
 * errors, and errors that are not SQLite's (bugs), pass through unchanged.
 */
export function mapSqliteError(error: unknown, path: string): unknown {
  if (isCeleryTsError(error)) return error;
  // better-sqlite3 checks the directory itself, before SQLite sees the path.
  if (error instanceof TypeError && /directory does not exist/.test(error.message)) {
    return configError(
      `cannot open the database ${path}: the directory ${dirname(path)} does not exist; ` +
        "create it, or point the path or URL at an existing directory",
      error,
    );
  }
  if (!(error instanceof Database.SqliteError)) return error;
  const detail = `${error.code}: ${error.message}`;
  switch (primaryCode(error.code)) {
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return new CeleryTsError(
        "CONNECTION",
        `the database ${path} stayed locked by another connection for over ${BUSY_TIMEOUT_MS} ms ` +
          `(${detail}); retry later`,
        { pkg: PKG, retryable: true, cause: error },
      );
    case "SQLITE_CANTOPEN":
      return configError(
        `cannot open the database ${path} (${detail}); check that it is a file path in a ` +
          "directory this process can write to",
        error,
      );
    case "SQLITE_READONLY":
    case "SQLITE_PERM":
    case "SQLITE_AUTH":
      return configError(
        `cannot write to the database ${path} (${detail}); the file, its directory and its ` +
          "-wal and -shm files must be writable by this process",
        error,
      );
    case "SQLITE_NOTADB":
      return configError(
        `${path} is not a SQLite database (${detail}); point the path or URL at a new file`,
        error,
      );
    case "SQLITE_FULL":
    case "SQLITE_IOERR":
      return new CeleryTsError("CONNECTION", `I/O error on the database ${path} (${detail})`, {
        pkg: PKG,
        retryable: true,
        cause: error,
      });
    default:
      return new CeleryTsError("CONNECTION", `SQLite error on the database ${path} (${detail})`, {
        pkg: PKG,
        cause: error,
      });
  }
}
