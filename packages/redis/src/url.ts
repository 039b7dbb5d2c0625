import type { Broadcast, CoordinationStore, ResultBackend, Transport } from "@celery-ts/core";
import type { DriverUrlOptions } from "@celery-ts/core/driver";
import { createRedisBroadcast } from "./fanout.ts";
import { createRedisBackend } from "./redis-backend.ts";
import { createRedisStore } from "./redis-store.ts";
import { createRedisTransport } from "./redis-transport.ts";

/**
 * The broker for a URL: `redis://[[username]:password@]host[:port][/db]`, `rediss://` (TLS),
 * `redis+sentinel://host:26379[,host:26379]/db?master_name=name`. Optional parameters:
 * `visibility_timeout` (seconds) and `global_keyprefix`, named as kombu's transport options.
 * Builds the transport without connecting (it connects on first use).
 */
export function createTransportFromUrl(url: string, options: DriverUrlOptions = {}): Transport {
  return createRedisTransport({ connection: url, ...options });
}

/** The result backend for a Redis URL; `?result_expires=` (seconds, 0: never) sets the expiry. */
export function createBackendFromUrl(url: string, options: DriverUrlOptions = {}): ResultBackend {
  return createRedisBackend({ connection: url, ...options });
}

/** The coordination store (beat's lease and ticks, fleet-wide counters) on a Redis URL. */
export function createStoreFromUrl(url: string, options: DriverUrlOptions = {}): CoordinationStore {
  return createRedisStore({ connection: url, ...options });
}

/** Remote control and events (kombu's pidbox and Celery's event exchange) on the Redis at `url`. */
export function createBroadcastFromUrl(url: string, options: DriverUrlOptions = {}): Broadcast {
  return createRedisBroadcast({ connection: url, ...options });
}
