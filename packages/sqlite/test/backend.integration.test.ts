import { join } from "node:path";
import {
  celeryNow,
  encodeJson,
  isCeleryTsError,
  type Logger,
  type ResultBackend,
  type ResultMeta,
} from "@celery-ts/core";
import { waitUntil } from "@celery-ts/testing";
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
  it("fails only the wait of a stored result that is not JSON, among the waits of one turn", async () => {
    const backend = connect();
    await backend.store("good-1", success("good-1", 1));
    await backend.store("bad", success("bad", 2));
    await backend.store("good-2", success("good-2", 3));
    withRawDb(file(), (db) =>
      db.run("UPDATE celery_ts_results SET meta = ? WHERE task_id = ?", "{not json", "bad"),
    );
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => void uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      // Begun in the same turn: one first look serves all three.
      const settled = await Promise.allSettled(
        ["good-1", "bad", "good-2"].map((id) => backend.waitFor(id, { timeout: 5 })),
      );
      expect(settled.map((s) => (s.status === "fulfilled" ? s.value.result : "failed"))).toEqual([
        1,
        "failed",
        3,
      ]);
      const failed = settled[1]?.status === "rejected" ? settled[1].reason : undefined;
      expect(isCeleryTsError(failed, "MALFORMED_MESSAGE")).toBe(true);
      expect(String((failed as Error).message)).toContain("the stored result of task bad");
      expect(uncaught).toEqual([]);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
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
      // A read that fails while the lock lasts (a retryable error, after SQLite's busy wait)
      // does not fail the waits: they look again at the next poll.
      const waiting = backend.waitFor("locked", { timeout: 60 });
      await waitUntil(() => lines.length > 0, { timeoutMs: 60_000, what: "the warning" });
      raw.exec("ROLLBACK");
      raw.close();
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
