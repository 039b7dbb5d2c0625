import { randomUUID } from "node:crypto";
import { testServers } from "@celery-ts/testing";
import pg from "pg";
import { afterAll } from "vitest";

/** The PostgreSQL (and database) of this test run: CELERY_TS_POSTGRES_URL, see docs/testing.md. */
export const PG_URL = testServers().postgresUrl;

/**
 * A schema of this test file's own (the server is shared with other tests), dropped after the
 * file, and a raw connection for what a foreign producer or an operator would do.
 */
export function useSchema(label: string): {
  schema: string;
  raw(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
} {
  const schema = `celery_ts_test_${label}_${randomUUID().slice(0, 8)}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });
  return { schema, raw: (sql, params = []) => pool.query(sql, params) };
}
