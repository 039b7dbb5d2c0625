import { dirname } from "node:path";
import { isCeleryTsError, type CeleryTsError } from "@celery-ts/core";
import {
  closedError as kitClosedError,
  configError as kitConfigError,
  connectionError,
} from "@celery-ts/core/driver";
import Database from "better-sqlite3";

export const PKG = "sqlite";

/** How long a statement waits for another connection's write lock before giving up. */
export const BUSY_TIMEOUT_MS = 5_000;

export function configError(message: string, cause?: unknown): CeleryTsError {
  return kitConfigError(PKG, message, cause);
}

/** @param what `"transport"` or `"result backend"` */
export function closedError(what: string): CeleryTsError {
  return kitClosedError(PKG, `SQLite ${what}`);
}

/** The primary result code of an extended one: SQLITE_BUSY_SNAPSHOT is a SQLITE_BUSY. */
function primaryCode(code: string): string {
  return code.split("_").slice(0, 2).join("_");
}

/** A lock another connection holds (SQLITE_BUSY, SQLITE_LOCKED and their extended codes). */
export function isBusy(error: unknown): boolean {
  if (!(error instanceof Database.SqliteError)) return false;
  const code = primaryCode(error.code);
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
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
      return connectionError(
        PKG,
        `the database ${path} stayed locked by another connection for over ${BUSY_TIMEOUT_MS} ms ` +
          `(${detail}); retry later`,
        { cause: error },
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
      return connectionError(PKG, `I/O error on the database ${path} (${detail})`, {
        cause: error,
      });
    default:
      return connectionError(PKG, `SQLite error on the database ${path} (${detail})`, {
        cause: error,
        retryable: false,
      });
  }
}
