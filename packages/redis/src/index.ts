import { registerDriver } from "@celery-ts/core/driver";
import {
  createBackendFromUrl,
  createBroadcastFromUrl,
  createStoreFromUrl,
  createTransportFromUrl,
} from "./url.ts";

export { createRedisBackend } from "./redis-backend.ts";
export type { RedisBackendOptions } from "./redis-backend.ts";
export { createRedisTransport } from "./redis-transport.ts";
export type { RedisTransportOptions } from "./redis-transport.ts";
export { createRedisStore } from "./redis-store.ts";
export type { RedisStoreOptions } from "./redis-store.ts";
export type { RedisConnection } from "./internal/link.ts";
export { createRedisBroadcast } from "./fanout.ts";
export type { RedisBroadcastOptions } from "./fanout.ts";
export { createBackendFromUrl, createBroadcastFromUrl, createStoreFromUrl, createTransportFromUrl };

// Importing the package makes its URL schemes resolve to it.
registerDriver({
  pkg: "@celery-ts/redis",
  schemes: ["redis", "rediss", "redis+sentinel", "sentinel"],
  createTransportFromUrl,
  createBroadcastFromUrl,
  createBackendFromUrl,
  createStoreFromUrl,
});
