import { backendConformance, transportConformance } from "@celery-ts/testing";
import { createPostgresBackend, createPostgresTransport } from "../src/index.ts";
import { PG_URL, useSchema } from "./support/pg.ts";

const { schema, raw } = useSchema("conformance");
// A one-second lease, looked for every 0.1 s: a dead consumer's messages come back within a test.
const options = { url: PG_URL, schema, visibilityTimeout: 1, pollInterval: 0.1 };

transportConformance("postgres", {
  create: (limits) => createPostgresTransport({ ...options, ...limits }),
  // LISTEN/NOTIFY alone: a lost wake-up would wait a minute for the poll.
  createWakeOnly: () => createPostgresTransport({ ...options, pollInterval: 60 }),
  async injectRaw(queue, text) {
    await raw(`INSERT INTO "${schema}".celery_ts_messages (queue, payload) VALUES ($1, $2)`, [
      queue,
      text,
    ]);
  },
  // A port nothing listens on.
  createUnreachable: () => createPostgresTransport({ url: "postgres://postgres@127.0.0.1:1/test" }),
});

backendConformance("postgres", {
  create: () => createPostgresBackend({ url: PG_URL, schema }),
});
