import type { ResultBackend, Transport } from "@celery-ts/core";
import { parseSqliteUrl } from "./internal/parse-url.ts";
import { createSqliteBackend } from "./sqlite-backend.ts";
import { createSqliteTransport } from "./sqlite-transport.ts";

/**
 * The broker for a URL such as `sqlite:////var/lib/app/queue.db` (absolute) or
 * `sqlite:///queue.db` (relative to the working directory); `?lease_ms=` and `?poll_ms=` set
 * the options of the same names.
 */
export function createTransportFromUrl(url: string): Transport {
  const { expiresInMs: _expiresInMs, ...options } = parseSqliteUrl(url);
  return createSqliteTransport(options);
}

/** The result backend for a `sqlite://` URL; `?expires_ms=` and `?poll_ms=` set its options. */
export function createBackendFromUrl(url: string): ResultBackend {
  const { leaseMs: _leaseMs, ...options } = parseSqliteUrl(url);
  return createSqliteBackend(options);
}
