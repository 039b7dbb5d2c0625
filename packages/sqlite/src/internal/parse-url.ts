import { resolve } from "node:path";
import { configError } from "./errors.ts";

/** What a `sqlite://` URL says: the options common to the transport and the backend. */
export interface SqliteUrlOptions {
  path: string;
  leaseMs?: number;
  pollIntervalMs?: number;
  expiresInMs?: number;
}

const FORMS =
  "use sqlite:///relative/path.db (relative to the working directory) or " +
  "sqlite:////absolute/path.db, optionally followed by ?lease_ms=30000&poll_ms=50&expires_ms=86400000";

// Both sides accept every parameter, so one URL can serve as broker and result backend.
const PARAMETERS: Record<string, keyof Omit<SqliteUrlOptions, "path">> = {
  lease_ms: "leaseMs",
  poll_ms: "pollIntervalMs",
  expires_ms: "expiresInMs",
};

/**
 * Reads a URL as SQLAlchemy does: `sqlite:///` followed by the path, so a fourth slash makes it
 * absolute. The path is taken as written (no percent-decoding), as SQLAlchemy takes it.
 */
export function parseSqliteUrl(url: string): SqliteUrlOptions {
  const match = /^sqlite:\/\/\/([^?#]+)(?:\?([^#]*))?$/i.exec(url);
  const path = match?.[1];
  if (path === undefined || path === ":memory:") {
    throw configError(`${JSON.stringify(url)} is not a SQLite file URL: ${FORMS}`);
  }
  const options: SqliteUrlOptions = { path: resolve(path) };
  for (const [name, value] of new URLSearchParams(match?.[2] ?? "")) {
    const option = PARAMETERS[name];
    if (!option) {
      throw configError(
        `unknown parameter ${JSON.stringify(name)} in ${JSON.stringify(url)} ` +
          `(known: ${Object.keys(PARAMETERS).join(", ")})`,
      );
    }
    if (!/^[1-9][0-9]*$/.test(value)) {
      throw configError(
        `${name} in ${JSON.stringify(url)} must be a positive whole number of milliseconds`,
      );
    }
    options[option] = Number(value);
  }
  return options;
}
