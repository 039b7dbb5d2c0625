export { createRedisBackend } from "./redis-backend.ts";
export type { RedisBackendOptions } from "./redis-backend.ts";
export { createRedisTransport } from "./redis-transport.ts";
export type { RedisTransportOptions } from "./redis-transport.ts";
export { createBackendFromUrl, createTransportFromUrl } from "./url.ts";
export type { RedisConnection } from "./internal/link.ts";
