import { atomicPublishConformance, storeConformance } from "@celery-ts/testing";
import { createPostgresStore, createPostgresTransport, createStoreFromUrl } from "../src/index.ts";
import { PG_URL, useSchema } from "./support/pg.ts";

// This run's own schema, so its table is apart from other runs' on the shared server.
const { schema, raw } = useSchema("store");

storeConformance("postgres", { create: () => createPostgresStore({ url: PG_URL, schema }) });

storeConformance("postgres (from a URL)", {
  create: () => createStoreFromUrl(`${PG_URL}?schema=${schema}&visibility_timeout=5`),
});

// Store and broker in one database: a tick's message and its record in one statement.
atomicPublishConformance("postgres", {
  pair: () => ({
    store: createPostgresStore({ url: PG_URL, schema }),
    transport: createPostgresTransport({ url: PG_URL, schema, pollInterval: 0.1 }),
  }),
  // Another database: the server's maintenance one (nothing is written to it).
  elsewhere: () => {
    const other = new URL(PG_URL);
    other.pathname = "/postgres";
    return createPostgresTransport({ url: other.toString(), schema });
  },
  // A trigger raising on insert of a message for the queue, dropped by the undo.
  refusePublish: async (queue) => {
    const literal = `'${queue.replaceAll("'", "''")}'`;
    await raw(`CREATE OR REPLACE FUNCTION "${schema}".refuse_message() RETURNS trigger
      LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
    await raw(`CREATE TRIGGER refuse_message BEFORE INSERT ON "${schema}".celery_ts_messages
      FOR EACH ROW WHEN (NEW.queue = ${literal}) EXECUTE FUNCTION "${schema}".refuse_message()`);
    return async () => {
      await raw(`DROP TRIGGER refuse_message ON "${schema}".celery_ts_messages`);
    };
  },
});
