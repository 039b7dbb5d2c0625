import { registerDriver } from "@celery-ts/core/driver";
import { createBackendFromUrl, createStoreFromUrl, createTransportFromUrl } from "./url.ts";

export { createPostgresBackend } from "./postgres-backend.ts";
export type { PostgresBackendOptions } from "./postgres-backend.ts";
export { createPostgresStore } from "./postgres-store.ts";
export type { PostgresStoreOptions } from "./postgres-store.ts";
export { createPostgresTransport } from "./postgres-transport.ts";
export type { PostgresTransportOptions } from "./postgres-transport.ts";
export { createBackendFromUrl, createStoreFromUrl, createTransportFromUrl };

// Importing the package makes postgres:// and postgresql:// URLs resolve to it.
registerDriver({
  pkg: "@celery-ts/postgres",
  schemes: ["postgres", "postgresql"],
  createTransportFromUrl,
  createBackendFromUrl,
  createStoreFromUrl,
});
