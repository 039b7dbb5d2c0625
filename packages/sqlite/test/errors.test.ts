import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isCeleryTsError } from "@celery-ts/core";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createSqliteBackend, createSqliteTransport } from "../src/index.ts";
import { mapSqliteError } from "../src/internal/errors.ts";
import { useTempDir } from "./support/temp-dir.ts";

const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
};

describe("native SQLite errors, mapped", () => {
  it.each([
    ["SQLITE_BUSY", "CONNECTION", true],
    ["SQLITE_BUSY_SNAPSHOT", "CONNECTION", true],
    ["SQLITE_LOCKED", "CONNECTION", true],
    ["SQLITE_IOERR_WRITE", "CONNECTION", true],
    ["SQLITE_CANTOPEN", "CONFIG", false],
    ["SQLITE_READONLY_DBMOVED", "CONFIG", false],
    ["SQLITE_NOTADB", "CONFIG", false],
    ["SQLITE_CORRUPT", "CONNECTION", false],
  ])("%s becomes a %s error (retryable: %s)", (native, code, retryable) => {
    const error = mapSqliteError(new Database.SqliteError("native message", native), "/data/q.db");
    expect(isCeleryTsError(error, code as "CONFIG")).toBe(true);
    expect(error).toMatchObject({ retryable });
    expect((error as Error).message).toMatch(/^\[celery-ts:sqlite\] .*\/data\/q\.db/);
    expect((error as Error).cause).toBeInstanceOf(Database.SqliteError);
  });

  it("passes other errors through", () => {
    const bug = new RangeError("not SQLite's");
    expect(mapSqliteError(bug, "/q.db")).toBe(bug);
  });
});

describe("opening a database that cannot be opened", () => {
  const dir = useTempDir();

  it("says which directory is missing, from connect() and from consume()", async () => {
    const path = join(dir(), "missing", "queue.db");
    const transport = createSqliteTransport({ path });
    const error = await caught(() => transport.connect());
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toContain(
      `the directory ${join(dir(), "missing")} does not exist`,
    );
    const consuming = await caught(() =>
      transport.consume(["q"], () => {}, { prefetch: 1, signal: new AbortController().signal }),
    );
    expect(isCeleryTsError(consuming, "CONFIG")).toBe(true);
    const backend = createSqliteBackend({ path });
    expect(isCeleryTsError(await caught(() => backend.get("t")), "CONFIG")).toBe(true);
    await Promise.all([transport.close(), backend.close()]);
  });

  it("says when the path is a directory or not a database", async () => {
    const folder = join(dir(), "folder.db");
    await mkdir(folder);
    const notDb = join(dir(), "notes.db");
    await writeFile(notDb, "these are not the pages you are looking for, ".repeat(200));
    for (const path of [folder, notDb]) {
      const error = await caught(() => createSqliteTransport({ path }).connect());
      expect(isCeleryTsError(error, "CONFIG")).toBe(true);
      expect((error as Error).message).toContain(path);
    }
  });

  it("rejects bad options and in-memory paths with CONFIG errors", () => {
    expect(() => createSqliteTransport({ path: "q.db", visibilityTimeout: 0 })).toThrow(
      /visibilityTimeout must be a number of seconds above 0/,
    );
    expect(() => createSqliteBackend({ path: "q.db", pollInterval: Number.NaN })).toThrow(
      /pollInterval must be a number of seconds/,
    );
    expect(() => createSqliteTransport({ path: ":memory:" })).toThrow(/memory:\/\//);
  });
});
