import { resolve } from "node:path";
import { takeDeliveryLimitParameters, type DeliveryLimitOptions } from "@celery-ts/core/driver";
import { configError, PKG } from "./errors.ts";

/** What a `sqlite://` URL says: the options common to the transport and the backend. */
export interface SqliteUrlOptions {
  path: string;
  /** Seconds. */
  visibilityTimeout?: number;
  /** Seconds. */
  pollInterval?: number;
  /** Seconds (`result_expires`). */
  expires?: number;
  /** The transport's dead-letter and size options. */
  limits?: DeliveryLimitOptions;
}

const FORMS =
  "use sqlite:///relative/path.db (relative to the working directory) or " +
  "sqlite:////absolute/path.db, optionally followed by ?visibility_timeout=30&polling_interval=0.05&result_expires=86400 " +
  "(seconds)";

// Both sides accept every parameter, so one URL can serve as broker and result backend.
// Named as kombu's transport options and Celery's result_expires; all in seconds.
const PARAMETERS: Record<string, keyof Omit<SqliteUrlOptions, "path">> = {
  visibility_timeout: "visibilityTimeout",
  polling_interval: "pollInterval",
  result_expires: "expires",
};

/**
 * Reads a URL as SQLAlchemy does: `sqlite:///` followed by the path, so a fourth slash makes it
 * absolute. The path is taken as written (no percent-decoding), as SQLAlchemy takes it.
 */
export function parseSqliteUrl(full: string): SqliteUrlOptions {
  // Dead-letter and size parameters are the transport's; every user of the URL accepts them.
  const { url, options: limits } = takeDeliveryLimitParameters(PKG, full);
  const match = /^sqlite:\/\/\/([^?#]+)(?:\?([^#]*))?$/i.exec(url);
  const path = match?.[1];
  if (path === undefined || path === ":memory:") {
    throw configError(`${JSON.stringify(url)} is not a SQLite file URL: ${FORMS}`);
  }
  const options: SqliteUrlOptions = {
    path: resolve(path),
    ...(Object.keys(limits).length > 0 && { limits }),
  };
  for (const [name, value] of new URLSearchParams(match?.[2] ?? "")) {
    const option = PARAMETERS[name];
    if (!option) {
      throw configError(
        `unknown parameter ${JSON.stringify(name)} in ${JSON.stringify(url)} ` +
          `(known: ${Object.keys(PARAMETERS).join(", ")})`,
      );
    }
    const seconds = /^[0-9]+(\.[0-9]+)?$/.test(value) ? Number(value) : Number.NaN;
    if (!(seconds > 0)) {
      throw configError(`${name} in ${JSON.stringify(url)} must be a positive number of seconds`);
    }
    options[option] = seconds;
  }
  return options;
}
