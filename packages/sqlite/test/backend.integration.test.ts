import { join } from "node:path";
import {
  celeryNow,
  encodeJson,
  isCeleryTsError,
  type ResultBackend,
  type ResultMeta,
} from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteBackend, type SqliteBackendOptions } from "../src/index.ts";
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
});
