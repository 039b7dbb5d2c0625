/** The transport's table, its prepared statements, and the claim transaction. */
import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import { prepareDeadLetters } from "./dead-letters.ts";

// Table and index names carry our prefix so the queue can share a file with an application's
// own tables. `payload` is the kombu envelope, readable by Python tooling.
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS celery_ts_messages (
  id INTEGER PRIMARY KEY,
  queue TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'reserved', 'dead')),
  lease_until INTEGER,
  delivery_tag TEXT,
  delivered INTEGER NOT NULL DEFAULT 0,
  payload TEXT NOT NULL,
  dead_reason TEXT,
  dead_at INTEGER
);
CREATE INDEX IF NOT EXISTS celery_ts_messages_ready
  ON celery_ts_messages (queue, priority DESC, id, available_at) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS celery_ts_messages_leased
  ON celery_ts_messages (lease_until) WHERE state = 'reserved';
CREATE INDEX IF NOT EXISTS celery_ts_messages_dead
  ON celery_ts_messages (queue, dead_at) WHERE state = 'dead';
`;

/** A message row's insert: queue, priority, available_at, payload (see `messageRow`). */
export const INSERT_MESSAGE =
  "INSERT INTO celery_ts_messages (queue, priority, available_at, payload) VALUES (?, ?, ?, ?)";

export interface Candidate {
  id: number;
  priority: number;
  /** The stored message's size in bytes, read without reading the message. */
  size: number;
}

export interface Reserved {
  id: number;
  tag: string;
  queue: string;
  payload: unknown;
  delivered: number;
}

export interface ClaimRequest {
  queues: readonly string[];
  /** The same queues as a JSON array, for `json_each`. */
  queuesJson: string;
  /**
   * When the look before a claim next looks for expired leases too (epoch ms): at most every
   * poll interval, since a lease only expires after the visibility timeout.
   */
  expiredLookAt: number;
}

/** Reserves a found row still as the look found it; `queues` matches the last parameter. */
const reserveReadySql = (queues: string): string =>
  `UPDATE celery_ts_messages
   SET state = 'reserved', lease_until = ?, delivery_tag = ?, delivered = delivered + 1
   WHERE id = ? AND state = 'ready' AND available_at <= ? AND octet_length(payload) <= ?
     AND ${queues}
   RETURNING id, queue, payload, delivered`;

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare<[string, number, number, string]>(INSERT_MESSAGE),
    // Walks the queue's ready index in delivery order, so it reads about `limit` rows.
    readyIn: db.prepare<[string, number, number], Candidate>(
      `SELECT id, priority, octet_length(payload) AS size FROM celery_ts_messages
       WHERE queue = ? AND state = 'ready' AND available_at <= ?
       ORDER BY priority DESC, id LIMIT ?`,
    ),
    // Leases of consumers that died: few rows, found by the lease index.
    expiredIn: db.prepare<[number, string, number], Candidate>(
      `SELECT id, priority, octet_length(payload) AS size FROM celery_ts_messages
       WHERE state = 'reserved' AND lease_until <= ? AND queue IN (SELECT value FROM json_each(?))
       ORDER BY priority DESC, id LIMIT ?`,
    ),
    reserve: db.prepare<[number, string, number], Omit<Reserved, "tag">>(
      `UPDATE celery_ts_messages
       SET state = 'reserved', lease_until = ?, delivery_tag = ?, delivered = delivered + 1
       WHERE id = ? RETURNING id, queue, payload, delivered`,
    ),
    // A row the look before the claim found, if it is still ready (no other consumer took it).
    // The id alone is not enough: ids are reused (no AUTOINCREMENT), so a row deleted and another
    // inserted since the look could hold it; that row is taken only if the look would have taken
    // it (one of the queues, due, within the size limit).
    reserveReady: db.prepare<
      [number, string, number, number, number, string],
      Omit<Reserved, "tag">
    >(reserveReadySql("queue IN (SELECT value FROM json_each(?))")),
    // The same for one queue: json_each costs about half the statement (2 of 4 µs of CPU).
    reserveReadyIn: db.prepare<
      [number, string, number, number, number, string],
      Omit<Reserved, "tag">
    >(reserveReadySql("queue = ?")),
    // A tag identifies one delivery of one row, so matching on tags alone would do; the ids let
    // SQLite find the rows by primary key. A lease lost to another consumer has another tag.
    renew: db.prepare<[number, string, string]>(
      `UPDATE celery_ts_messages SET lease_until = ?
       WHERE id IN (SELECT value FROM json_each(?)) AND delivery_tag IN (SELECT value FROM json_each(?))
         AND state = 'reserved'`,
    ),
    requeue: db.prepare<[string, string]>(
      `UPDATE celery_ts_messages SET state = 'ready', lease_until = NULL, delivery_tag = NULL
       WHERE id IN (SELECT value FROM json_each(?)) AND delivery_tag IN (SELECT value FROM json_each(?))
         AND state = 'reserved'`,
    ),
    ack: db.prepare<[number, string]>(
      "DELETE FROM celery_ts_messages WHERE id = ? AND delivery_tag = ?",
    ),
    /** Reserves a row for this transaction only, without reading it (a size refusal). */
    tag: db.prepare<[string, number]>(
      `UPDATE celery_ts_messages SET state = 'reserved', delivery_tag = ? WHERE id = ?`,
    ),
    purge: db.prepare<[string]>(
      "DELETE FROM celery_ts_messages WHERE queue = ? AND state = 'ready'",
    ),
    depth: db.prepare<[string], { n: number }>(
      "SELECT count(*) AS n FROM celery_ts_messages WHERE queue = ? AND state = 'ready'",
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;

/**
 * Up to `limit` messages due on the queues, in delivery order: higher priority, then older.
 * Those of expired leases only `withExpired`.
 */
export function dueMessages(
  s: Statements,
  request: ClaimRequest,
  now: number,
  limit: number,
  withExpired = true,
): Candidate[] {
  const found =
    request.queues.length === 1
      ? s.readyIn.all(request.queues[0]!, now, limit)
      : request.queues.flatMap((queue) => s.readyIn.all(queue, now, limit));
  if (withExpired) found.push(...s.expiredIn.all(now, request.queuesJson, limit));
  if (found.length <= 1) return found;
  return found.sort((a, b) => b.priority - a.priority || a.id - b.id).slice(0, limit);
}

/** What a claim does with a row over the size limit: dead-letters it by its id and tag. */
export type Oversized = (row: { id: number; tag: string; size: number }) => void;

export function prepare(db: Database.Database) {
  const statements = prepareStatements(db);
  const dead = prepareDeadLetters(db);
  /**
   * Reserves `found` (what the look before the claim found) while they are still ready, in
   * order; stops at the first another consumer took (or that is not simply ready: an expired
   * lease, a message over the size limit, a row that reuses the id of one deleted since the look
   * and is of another queue, not due or too big). The rest is for a full look.
   */
  const reserveFound = (
    request: ClaimRequest,
    found: readonly Candidate[],
    now: number,
    leaseUntil: number,
    maxBytes: number,
  ) => {
    const reserved: Reserved[] = [];
    const [one, ...more] = request.queues;
    const [reserve, queues] =
      one !== undefined && more.length === 0
        ? [statements.reserveReadyIn, one]
        : [statements.reserveReady, request.queuesJson];
    for (const { id, size } of found) {
      if (size > maxBytes) break;
      const tag = randomUUID();
      const row = reserve.get(leaseUntil, tag, id, now, maxBytes, queues);
      if (!row) break;
      reserved.push({ ...row, tag });
    }
    return reserved;
  };
  // Run with `.immediate()`: BEGIN IMMEDIATE takes the write lock before reading, so no other
  // process can claim the same rows between our SELECT and UPDATE.
  const claim = db.transaction(
    (
      request: ClaimRequest,
      found: readonly Candidate[],
      limit: number,
      visibilityMs: number,
      maxBytes: number,
      oversized: Oversized,
    ) => {
      const now = Date.now();
      // Usually what the look found is still there: reserved without reading the queue again.
      const reserved = reserveFound(request, found, now, now + visibilityMs, maxBytes);
      if (reserved.length === found.length) return reserved;
      const rest = dueMessages(statements, request, now, limit - reserved.length);
      return reserved.concat(
        rest.flatMap(({ id, size }): Reserved[] => {
          const tag = randomUUID();
          // Over the limit: dead-lettered unread, so the process never holds it.
          if (size > maxBytes) {
            statements.tag.run(tag, id);
            oversized({ id, tag, size });
            return [];
          }
          const row = statements.reserve.get(now + visibilityMs, tag, id);
          return row ? [{ ...row, tag }] : [];
        }),
      );
    },
  );
  /** Many messages in one transaction: all of them, or (on an error) none. */
  const insertMany = db.transaction(
    (rows: readonly (readonly [string, number, number, string])[]) => {
      for (const row of rows) statements.insert.run(...row);
    },
  );
  return { ...statements, dead, claim, insertMany };
}

/** Rows as the `json_each` parameters of `renew` and `requeue`: their ids, then their tags. */
export function asJson(rows: readonly { id: number; tag: string }[]): [string, string] {
  return [JSON.stringify(rows.map((row) => row.id)), JSON.stringify(rows.map((row) => row.tag))];
}
