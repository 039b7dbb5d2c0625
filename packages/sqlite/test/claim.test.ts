/**
 * The claim transaction reserves what its look found by id. SQLite reuses the largest id once
 * its row is deleted (no AUTOINCREMENT), so a row inserted between the look and the claim can
 * carry the id of a found row: the claim must take it only if the look would have.
 */
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  dueMessages,
  INSERT_MESSAGE,
  prepare,
  SCHEMA,
  type ClaimRequest,
} from "../src/internal/statements.ts";

const MAX_BYTES = 1_000;
const VISIBILITY_MS = 60_000;

describe("sqlite claim of what the look found", () => {
  let db: Database.Database;
  let s: ReturnType<typeof prepare>;
  // One queue, or several (each has its own reserve statement).
  let queues = ["a"];
  const request = (): ClaimRequest => ({
    queues,
    queuesJson: JSON.stringify(queues),
    expiredLookAt: Number.MAX_SAFE_INTEGER,
  });
  const insert = (queue: string, payload: string, availableAt = 0) =>
    Number(db.prepare(INSERT_MESSAGE).run(queue, 0, availableAt, payload).lastInsertRowid);

  beforeEach(() => {
    queues = ["a"];
    db = new Database(":memory:");
    db.exec(SCHEMA);
    s = prepare(db);
  });
  afterEach(() => db.close());

  /**
   * Looks at queue `a` (two rows), then deletes the newest found row and inserts `replace`'s row,
   * which reuses its id; then claims. Returns the ids and queues claimed, and the new row's id.
   */
  const claimAfterReuse = (replace: () => number) => {
    insert("a", "first");
    const newest = insert("a", "second");
    const req = request();
    const found = dueMessages(s, req, Date.now(), 10, false);
    expect(found.map((row) => row.id)).toEqual([newest - 1, newest]);
    db.prepare("DELETE FROM celery_ts_messages WHERE id = ?").run(newest);
    const reused = replace();
    expect(reused).toBe(newest);
    const refused: number[] = [];
    const claimed = s.claim.immediate(req, found, 10, VISIBILITY_MS, MAX_BYTES, (row) =>
      refused.push(row.id),
    );
    const state = db
      .prepare<[number], { state: string }>("SELECT state FROM celery_ts_messages WHERE id = ?")
      .get(reused)?.state;
    return { claimed: claimed.map((row) => [row.id, row.queue]), refused, state };
  };

  it("reserves the found rows without a second look when nothing changed", () => {
    const { claimed } = claimAfterReuse(() => insert("a", "third"));
    expect(claimed).toEqual([
      [1, "a"],
      [2, "a"],
    ]);
  });

  it("does not take a row of another queue that reuses a found id", () => {
    const { claimed, state } = claimAfterReuse(() => insert("b", "other queue"));
    expect(claimed).toEqual([[1, "a"]]);
    expect(state).toBe("ready");
  });

  it("does not take a row of a queue not consumed that reuses a found id, with several queues", () => {
    queues = ["a", "c"];
    const { claimed, state } = claimAfterReuse(() => insert("b", "other queue"));
    expect(claimed).toEqual([[1, "a"]]);
    expect(state).toBe("ready");
  });

  it("takes a row of another consumed queue that reuses a found id", () => {
    queues = ["a", "b"];
    const { claimed } = claimAfterReuse(() => insert("b", "other consumed queue"));
    expect(claimed).toEqual([
      [1, "a"],
      [2, "b"],
    ]);
  });

  it("does not take a row not yet due that reuses a found id", () => {
    const { claimed, state } = claimAfterReuse(() => insert("a", "eta", Date.now() + 3_600_000));
    expect(claimed).toEqual([[1, "a"]]);
    expect(state).toBe("ready");
  });

  it("refuses, rather than delivers, a row over the size limit that reuses a found id", () => {
    const { claimed, refused, state } = claimAfterReuse(() =>
      insert("a", "x".repeat(MAX_BYTES + 1)),
    );
    expect(claimed).toEqual([[1, "a"]]);
    // The full look after the reserve stopped hands it to the size refusal, unread.
    expect(refused).toEqual([2]);
    expect(state).toBe("reserved");
  });
});
