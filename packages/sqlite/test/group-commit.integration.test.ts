import { join } from "node:path";
import { isCeleryTsError } from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
import { acquireSharedDb, type SharedDb } from "../src/internal/shared-db.ts";
import { withRawDb } from "./support/raw-db.ts";
import { commitUntilCheckpointed } from "./support/checkpointed.ts";
import { useTempDir } from "./support/temp-dir.ts";

describe("sqlite group commit", () => {
  const dir = useTempDir();
  const file = (): string => join(dir(), "group.db");
  const held: SharedDb[] = [];
  const acquire = (): SharedDb => {
    const shared = acquireSharedDb(file());
    held.push(shared);
    return shared;
  };
  const rows = (): unknown[] => withRawDb(file(), (db) => db.all("SELECT x FROM t ORDER BY x"));

  afterEach(() => {
    for (const shared of held.splice(0)) shared.release();
  });

  it("commits the writes of one turn together, and a failing write fails alone", async () => {
    const shared = acquire();
    shared.db.exec("CREATE TABLE t (x INTEGER UNIQUE)");
    const insert = shared.db.prepare("INSERT INTO t (x) VALUES (?)");
    const writes = [1, 1, 2].map((x) => shared.write(() => insert.run(x).changes, undefined));
    const [first, duplicate, second] = await Promise.allSettled(writes);
    expect(first).toEqual({ status: "fulfilled", value: 1 });
    expect(second).toEqual({ status: "fulfilled", value: 1 });
    expect(duplicate?.status).toBe("rejected");
    const error = (duplicate as PromiseRejectedResult).reason;
    expect(isCeleryTsError(error) && error.message).toMatch(/UNIQUE constraint failed/);
    // Committed once they resolve: another connection sees them.
    expect(rows()).toEqual([{ x: 1 }, { x: 2 }]);
  });

  it("shares one connection per file, open until its last user releases it", async () => {
    const [a, b] = [acquire(), acquire()];
    expect(a.db).toBe(b.db);
    a.db.exec("CREATE TABLE t (x INTEGER)");
    const pending = b.write(() => b.db.prepare("INSERT INTO t (x) VALUES (7)").run(), undefined);
    a.release();
    b.release();
    // Released with a write queued: it is committed before the connection closes.
    await pending;
    expect(b.db.open).toBe(false);
    expect(rows()).toEqual([{ x: 7 }]);
  });

  it("copies the WAL into the database file as commits add up, on the checkpointer's thread", async () => {
    const shared = acquire();
    // One commit each: the checkpoint comes after a hundred of them.
    await commitUntilCheckpointed(shared, file(), 250, 100 * 2000);
  });
});
