import type { Broadcast, CoordinationStore, ResultBackend, Transport } from "@celery-ts/core";
import type { DriverUrlOptions } from "@celery-ts/core/driver";
import { createSqliteBroadcast } from "./fanout.ts";
import { parseSqliteUrl } from "./internal/parse-url.ts";
import { createSqliteBackend } from "./sqlite-backend.ts";
import { createSqliteStore } from "./sqlite-store.ts";
import { createSqliteTransport } from "./sqlite-transport.ts";

/**
 * The broker for a URL such as `sqlite:////var/lib/app/queue.db` (absolute) or
 * `sqlite:///queue.db` (relative to the working directory); `?visibility_timeout=` and
 * `?polling_interval=` (seconds) set `visibilityTimeout` and `pollInterval`.
 */
export function createTransportFromUrl(url: string, fromUrl: DriverUrlOptions = {}): Transport {
  const { expires: _expires, limits, ...options } = parseSqliteUrl(url);
  return createSqliteTransport({ ...options, ...limits, ...fromUrl });
}

/**
 * The result backend for a `sqlite://` URL; `?result_expires=` and `?polling_interval=` (seconds)
 * set its options.
 */
export function createBackendFromUrl(url: string, fromUrl: DriverUrlOptions = {}): ResultBackend {
  const {
    visibilityTimeout: _visibilityTimeout,
    limits: _limits,
    ...options
  } = parseSqliteUrl(url);
  return createSqliteBackend({ ...options, ...(fromUrl.logger && { logger: fromUrl.logger }) });
}

/** The coordination store (beat's lease and ticks, fleet-wide counters) in a `sqlite://` file. */
export function createStoreFromUrl(url: string): CoordinationStore {
  return createSqliteStore({ path: parseSqliteUrl(url).path });
}

/** Remote control and events through the database of a `sqlite://` broker URL. */
export function createBroadcastFromUrl(url: string, options: DriverUrlOptions = {}): Broadcast {
  const { path } = parseSqliteUrl(url);
  return createSqliteBroadcast({ path, ...options });
}
