import { join } from "node:path";
import {
  celeryNow,
  encodeJson,
  isCeleryTsError,
  type Logger,
  type ResultBackend,
  type ResultMeta,
} from "@celery-ts/core";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  createBackendFromUrl,
  createSqliteBackend,
  type SqliteBackendOptions,
} from "../src/index.ts";
import { withRawDb } from "./support/raw-db.ts";
import { useTempDir } from "./support/temp-dir.ts";

const success = (taskId: string, result: unknown): ResultMeta => ({
  status: "SUCCESS",
  result,
  traceback: null,
  children: [],
  date_done: celeryNow(),
  task_id: taskId,
});

describe("sqlite result backend", () => {
  const dir = useTempDir();
  const file = (): string => join(dir(), "results.db");
  const open: ResultBackend[] = [];
  const connect = (options: Omit<SqliteBackendOptions, "path"> = {}): ResultBackend => {
    const backend = createSqliteBackend({ path: file(), ...options });
    open.push(backend);
    return backend;
  };
  const count = (): unknown[] =>
    withRawDb(file(), (db) => db.all("SELECT task_id FROM celery_ts_results"));

  afterEach(async () => {
    await Promise.all(open.splice(0).map((backend) => backend.close()));
  });

  it("wakes a waiter on a result written by another process, without waiting for the poll", async () => {
    const backend = connect({ pollInterval: 60 });
    await backend.connect();
    const waiting = backend.waitFor("foreign", { timeout: 2 });
    // A plain connection does not go through this process's wake-up: only the WAL watch sees it.
    withRawDb(file(), (db) =>
      db.run(
        "INSERT INTO celery_ts_results (task_id, meta, ready, expires_at) VALUES (?, ?, 1, ?)",
        "foreign",
        encodeJson(success("foreign", "from afar")),
        Date.now() + 60_000,
      ),
    );
    expect((await waiting).result).toBe("from afar");
  });

  it("deletes an expired result when it is read, and sweeps expired ones on a later store", async () => {
    const backend = connect();
    await backend.store("short", success("short", 1), { expires: 0.05 });
    await backend.store("other", success("other", 2), { expires: 0.05 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await backend.get("short")).toBeUndefined();
    expect(count()).toEqual([{ task_id: "other" }]);
    // A new connection sweeps on its first store.
    await connect().store("kept", success("kept", 3));
    expect(count()).toEqual([{ task_id: "kept" }]);
  });

  it("rejects pending waiters with a CLOSED error when closed", async () => {
    const backend = connect();
    const waiting = backend.waitFor("never", { timeout: 5 }).catch((e: unknown) => e);
    await backend.close();
    expect(isCeleryTsError(await waiting, "CLOSED")).toBe(true);
    expect(isCeleryTsError(await backend.get("x").catch((e: unknown) => e), "CLOSED")).toBe(true);
  });
  it("logs once that it cannot read results while another connection locks the file, and once when it can", async () => {
    // An operator's tool holding the file's write lock (a rollback-journal transaction) before
    // the backend first opens it.
    const raw = new Database(file());
    raw.exec("CREATE TABLE held (x)");
    raw.exec("BEGIN EXCLUSIVE");
    raw.exec("INSERT INTO held VALUES (1)");
    const lines: { level: string; msg: string }[] = [];
    const at = (level: string) => (msg: string) => void lines.push({ level, msg });
    const logger: Logger = {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
    };
    // Built from a URL, as a worker or a celery-ts command builds it, with their logger.
    const backend = createBackendFromUrl(`sqlite:///${file()}`, { logger });
    open.push(backend);
    try {
      // A wait fails with a clear, retryable error while the lock lasts (SQLite's busy wait).
      const failed = await backend.waitFor("locked", { timeout: 60 }).catch((e: unknown) => e);
      expect(isCeleryTsError(failed, "CONNECTION") && failed.retryable).toBe(true);
      raw.exec("ROLLBACK");
      raw.close();
      const waiting = backend.waitFor("locked", { timeout: 60 });
      await backend.store("locked", success("locked", 7));
      expect((await waiting).result).toBe(7);
      expect(lines.map((l) => [l.level, l.msg])).toEqual([
        [
          "warn",
          "sqlite result backend: could not read results; waits look again at their next poll",
        ],
        ["info", "sqlite result backend: reading results works again"],
      ]);
    } finally {
      if (raw.open) raw.close();
    }
  }, 120_000);
});
