import { storeConformance } from "@celery-ts/testing";
import { createPostgresStore, createStoreFromUrl } from "../src/index.ts";
import { PG_URL, useSchema } from "./support/pg.ts";

// This run's own schema, so its table is apart from other runs' on the shared server.
const { schema } = useSchema("store");

storeConformance("postgres", { create: () => createPostgresStore({ url: PG_URL, schema }) });

storeConformance("postgres (from a URL)", {
  create: () => createStoreFromUrl(`${PG_URL}?schema=${schema}&visibility_timeout=5`),
});
