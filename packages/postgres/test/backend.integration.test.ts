import { isCeleryTsError, type ResultMeta } from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
import { createPostgresBackend } from "../src/index.ts";
import { PG_URL, useSchema } from "./support/pg.ts";

const { schema, raw } = useSchema("backend");

const success = (taskId: string, result: unknown): ResultMeta => ({
  status: "SUCCESS",
  result,
  traceback: null,
  children: [],
  date_done: null,
  task_id: taskId,
});

describe("PostgreSQL result backend", () => {
  const backends: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(backends.splice(0).map((backend) => backend.close()));
  });

  it("fails only the wait of a stored result that is not JSON; the other waits go on", async () => {
    const backend = createPostgresBackend({ url: PG_URL, schema });
    backends.push(backend);
    await backend.connect();
    const good = backend.waitFor("good", { timeout: 10 });
    const bad = backend.waitFor("bad", { timeout: 10 }).catch((error: unknown) => error);
    // Another program writes a result this backend cannot read, and announces it.
    await raw(
      `INSERT INTO "${schema}".celery_ts_results (task_id, meta, ready, expires_at)
       VALUES ('bad', '{not json', true, $1)`,
      [Date.now() + 60_000],
    );
    await raw(`SELECT pg_notify($1, 'bad')`, [`celery_ts_results.${schema}`]);
    const failed = await bad;
    expect(isCeleryTsError(failed, "MALFORMED_MESSAGE")).toBe(true);
    expect(String((failed as Error).message)).toContain("the stored result of task bad");
    await backend.store("good", success("good", 7));
    expect((await good).result).toBe(7);
  });
});
