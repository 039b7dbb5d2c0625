import { join } from "node:path";
import { storeConformance } from "@celery-ts/testing";
import { createSqliteStore, createStoreFromUrl } from "../src/index.ts";
import { useTempDir } from "./support/temp-dir.ts";

// Every connection of a test opens the same file in that test's own directory.
const dir = useTempDir();

storeConformance("sqlite", { create: () => createSqliteStore({ path: join(dir(), "store.db") }) });

storeConformance("sqlite (from a URL)", {
  create: () => createStoreFromUrl(`sqlite:///${join(dir(), "store.db")}`),
});
