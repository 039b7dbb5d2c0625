import { statSync } from "node:fs";
import { expect, vi } from "vitest";
import type { SharedDb } from "../../src/internal/shared-db.ts";
import { withRawDb } from "./raw-db.ts";

/**
 * Commits `rows` rows of 2,000 bytes one at a time on `shared` (the file at `path`), then waits
 * until more than `bytes` of them are in the database file itself: only a checkpoint puts them
 * there (SQLite's automatic one waits for 10,000 pages of WAL, far more than these). Every row is
 * then in the database.
 */
export async function commitUntilCheckpointed(
  shared: SharedDb,
  path: string,
  rows: number,
  bytes: number,
): Promise<void> {
  shared.db.exec("CREATE TABLE t (x INTEGER, pad BLOB)");
  const insert = shared.db.prepare("INSERT INTO t (x, pad) VALUES (?, zeroblob(2000))");
  for (let x = 0; x < rows; x++) await shared.write(() => insert.run(x), undefined);
  await vi.waitFor(() => expect(statSync(path).size).toBeGreaterThan(bytes), { timeout: 10_000 });
  expect(withRawDb(path, (db) => db.all("SELECT count(*) AS n FROM t"))).toEqual([{ n: rows }]);
}
