import { join } from "node:path";
import Database from "better-sqlite3";
import { atomicPublishConformance, storeConformance } from "@celery-ts/testing";
import { createSqliteStore, createSqliteTransport, createStoreFromUrl } from "../src/index.ts";
import { useTempDir } from "./support/temp-dir.ts";

// Every connection of a test opens the same file in that test's own directory.
const dir = useTempDir();

storeConformance("sqlite", { create: () => createSqliteStore({ path: join(dir(), "store.db") }) });

storeConformance("sqlite (from a URL)", {
  create: () => createStoreFromUrl(`sqlite:///${join(dir(), "store.db")}`),
});

// Store and broker in one file: a tick's message and its record in one transaction.
atomicPublishConformance("sqlite", {
  pair: () => ({
    store: createSqliteStore({ path: join(dir(), "beat.db") }),
    transport: createSqliteTransport({ path: join(dir(), "beat.db"), pollInterval: 0.02 }),
  }),
  elsewhere: () => createSqliteTransport({ path: join(dir(), "other.db") }),
  // A trigger raising on insert of a message for the queue, dropped by the undo.
  refusePublish: async (queue) => {
    const exec = (sql: string) => {
      const db = new Database(join(dir(), "beat.db"));
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
    };
    const literal = `'${queue.replaceAll("'", "''")}'`;
    exec(`CREATE TRIGGER refuse_message BEFORE INSERT ON celery_ts_messages
      WHEN NEW.queue = ${literal} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`);
    return async () => exec("DROP TRIGGER refuse_message");
  },
});
