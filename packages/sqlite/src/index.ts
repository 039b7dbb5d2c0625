export { createSqliteBackend } from "./sqlite-backend.ts";
export type { SqliteBackendOptions } from "./sqlite-backend.ts";
export { createSqliteTransport } from "./sqlite-transport.ts";
export type { SqliteTransportOptions } from "./sqlite-transport.ts";
export { createBackendFromUrl, createTransportFromUrl } from "./url.ts";
