import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { TaskState } from "@celery-ts/core";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { until } from "../../worker/test/faults/harness.ts";
import { createPostgresBackend } from "../src/index.ts";
import { PG_URL } from "./support/pg.ts";

const CLI = join(import.meta.dirname, "../../worker/src/cli.ts");

// A one-shot command's backend reports to the command's logger: `celery-ts result` waiting on a
// PostgreSQL backend whose sessions are ended (only this test's: by application_name) prints the
// backend's warning on stderr, and still prints the result once it is stored.
describe("celery-ts result on PostgreSQL: the backend's warnings reach the CLI's log", () => {
  const tag = randomUUID().slice(0, 8);
  const schema = `faults_cli_${tag}`;
  const appName = `celery_ts_faults_cli_${tag}`;
  const url = new URL(PG_URL);
  url.searchParams.set("schema", schema);
  url.searchParams.set("application_name", appName);
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });
  const sessions = async (where: string): Promise<number> => {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND ${where}`,
      [appName],
    );
    return rows[0]!.n;
  };

  it("prints the lost LISTEN connection as a JSON warning, then the result", async () => {
    const id = randomUUID();
    // Run from this package, where @celery-ts/postgres resolves (as in an app that installed it).
    const child = spawn(
      process.execPath,
      [CLI, "result", id, "--backend", url.toString(), "--timeout", "60", "--log-format", "json"],
      { cwd: join(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const backend = createPostgresBackend({ url: PG_URL, schema });
    try {
      await until(
        async () => (await sessions("query LIKE 'LISTEN%'")) > 0,
        30_000,
        "the command to listen for its result",
      );
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [appName],
      );
      await until(
        () => stderr.includes("lost the LISTEN connection"),
        30_000,
        `the backend's warning on stderr (so far: ${stderr})`,
      );
      const warning = stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => String(l.msg).includes("lost the LISTEN connection"));
      expect(warning).toMatchObject({
        level: "warn",
        msg: expect.stringMatching(/^postgres result backend: lost the LISTEN connection to /),
      });
      await backend.store(id, { status: TaskState.SUCCESS, result: 42 } as never);
      expect(await exited).toBe(0);
      expect(stdout).toBe("42\n");
    } finally {
      child.kill();
      await backend.close();
    }
  }, 120_000);
});
