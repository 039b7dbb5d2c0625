import { registerDriver } from "@celery-ts/core/driver";
import {
  createBackendFromUrl,
  createBroadcastFromUrl,
  createStoreFromUrl,
  createTransportFromUrl,
} from "./url.ts";

export { createSqliteBackend } from "./sqlite-backend.ts";
export type { SqliteBackendOptions } from "./sqlite-backend.ts";
export { createSqliteTransport } from "./sqlite-transport.ts";
export type { SqliteTransportOptions } from "./sqlite-transport.ts";
export { createSqliteStore } from "./sqlite-store.ts";
export type { SqliteStoreOptions } from "./sqlite-store.ts";
export { createSqliteBroadcast } from "./fanout.ts";
export type { SqliteBroadcastOptions } from "./fanout.ts";
export { createBackendFromUrl, createBroadcastFromUrl, createStoreFromUrl, createTransportFromUrl };

// Importing the package makes sqlite:// URLs resolve to it.
registerDriver({
  pkg: "@celery-ts/sqlite",
  schemes: ["sqlite"],
  createTransportFromUrl,
  createBroadcastFromUrl,
  createBackendFromUrl,
  createStoreFromUrl,
});
