import { workerConformance } from "@celery-ts/testing";
import { createWorker } from "@celery-ts/worker";
import { createPostgresBackend, createPostgresTransport } from "../src/index.ts";
import { PG_URL, useSchema } from "./support/pg.ts";

const { schema, raw } = useSchema("worker");

workerConformance("postgres", {
  createWorker,
  createTransport: () =>
    createPostgresTransport({ url: PG_URL, schema, visibilityTimeout: 1, pollInterval: 0.1 }),
  createBackend: () => createPostgresBackend({ url: PG_URL, schema }),
  async injectRaw(queue, text) {
    // Opening a transport creates the table, as a worker does before a foreign producer writes.
    const transport = createPostgresTransport({ url: PG_URL, schema });
    await transport.connect();
    await transport.close();
    await raw(`INSERT INTO "${schema}".celery_ts_messages (queue, payload) VALUES ($1, $2)`, [
      queue,
      text,
    ]);
  },
});
