import type { ResultBackend, Transport } from "@celery-ts/core";
import { createRedisBackend } from "./redis-backend.ts";
import { createRedisTransport } from "./redis-transport.ts";

/**
 * The broker for a URL: `redis://[[username]:password@]host[:port][/db]`, `rediss://` (TLS),
 * `redis+sentinel://host:26379[,host:26379]/db?master_name=name`. Optional parameters:
 * `visibility_timeout` (seconds) and `global_keyprefix`, named as kombu's transport options.
 * Builds the transport without connecting (it connects on first use).
 */
export function createTransportFromUrl(url: string): Transport {
  return createRedisTransport({ connection: url });
}

/** The result backend for a Redis URL; `?result_expires=` (seconds, 0: never) sets the expiry. */
export function createBackendFromUrl(url: string): ResultBackend {
  return createRedisBackend({ connection: url });
}
