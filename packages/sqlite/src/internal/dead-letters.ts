/** Dead letters in the messages table: bounds, size refusal, replay and purge. */
import type { DeadLetter, DeadLetterSelection } from "@celery-ts/core";
import {
  deadLetterCountLimit,
  notKeptPayload,
  notKeptReason,
  storedDeadLetter,
  taskIdOf,
  type DeadLetterLimits,
  type TrimSchedule,
} from "@celery-ts/core/driver";
import type Database from "better-sqlite3";

const T = "celery_ts_messages";
/** The task id of a stored envelope, in SQL (NULL when it is not JSON). */
const TASK_ID = "CASE WHEN json_valid(payload) THEN json_extract(payload, '$.headers.id') END";
const NOT_KEPT = `payload LIKE '{"celery_ts_not_kept":true%'`;

export function prepareDeadLetters(db: Database.Database) {
  return {
    // The headers' part of a large message, not the message parsed: SQLite's JSON parser would
    // hold several times its size.
    sizeOf: db.prepare<[number, string], { size: number; head: string; queue: string }>(
      `SELECT octet_length(payload) AS size, queue,
         CASE WHEN octet_length(payload) <= 1048576 THEN payload
           ELSE substr(payload, instr(payload, '"headers"'), 65536) END AS head
       FROM ${T}
       WHERE id = ? AND delivery_tag = ?`,
    ),
    kill: db.prepare<[string, number, string | null, number, string]>(
      `UPDATE ${T}
       SET state = 'dead', dead_reason = ?, dead_at = ?, payload = coalesce(?, payload),
           lease_until = NULL, delivery_tag = NULL
       WHERE id = ? AND delivery_tag = ?`,
    ),
    drop: db.prepare<[number, string]>(`DELETE FROM ${T} WHERE id = ? AND delivery_tag = ?`),
    expire: db.prepare<[string, number]>(
      `DELETE FROM ${T} WHERE queue = ? AND state = 'dead' AND dead_at < ?`,
    ),
    overCount: db.prepare<[string, number]>(
      `DELETE FROM ${T} WHERE id IN (SELECT id FROM ${T} WHERE queue = ? AND state = 'dead'
         ORDER BY dead_at DESC, id DESC LIMIT -1 OFFSET ?)`,
    ),
    overBytes: db.prepare<[string, number]>(
      `DELETE FROM ${T} WHERE id IN (SELECT id FROM (
         SELECT id, sum(octet_length(payload)) OVER (ORDER BY dead_at DESC, id DESC) AS total
         FROM ${T} WHERE queue = ? AND state = 'dead') WHERE total > ?)`,
    ),
    list: db.prepare<[string, number], DeadLetter>(
      `SELECT queue, payload AS raw, dead_reason AS reason, dead_at AS rejectedAt FROM ${T}
       WHERE queue = ? AND state = 'dead' ORDER BY dead_at, id LIMIT ?`,
    ),
    pick: db.prepare<[string, string | null, string | null, number, number], { id: number }>(
      `SELECT id FROM ${T} WHERE queue = ? AND state = 'dead'
         AND (? IS NULL OR ${TASK_ID} = ?) AND (? = 0 OR NOT ${NOT_KEPT})
       ORDER BY dead_at, id LIMIT ?`,
    ),
    replay: db.prepare<[string]>(
      `UPDATE ${T} SET state = 'ready', dead_reason = NULL, dead_at = NULL, delivered = 0,
         available_at = 0
       WHERE id IN (SELECT value FROM json_each(?)) AND state = 'dead'`,
    ),
    purge: db.prepare<[string]>(
      `DELETE FROM ${T} WHERE id IN (SELECT value FROM json_each(?)) AND state = 'dead'`,
    ),
  };
}

type Statements = ReturnType<typeof prepareDeadLetters>;

/** Drops the oldest dead letters of `queue` beyond the bounds. */
function trim(s: Statements, queue: string, limits: DeadLetterLimits, now: number): void {
  s.expire.run(queue, now - limits.maxAge * 1000);
  s.overCount.run(queue, limits.maxCount);
  s.overBytes.run(queue, limits.maxBytes);
}

/**
 * Dead-letters a delivered row (or deletes it when dead letters are off), keeping only its task
 * id when it alone is over the byte bound; then trims the queue's dead letters.
 */
export function killRow(
  s: Statements,
  handle: { id: number; tag: string },
  reason: string,
  limits: DeadLetterLimits | undefined,
  schedule: TrimSchedule | undefined,
): void {
  if (!limits) {
    s.drop.run(handle.id, handle.tag);
    return;
  }
  const row = s.sizeOf.get(handle.id, handle.tag);
  if (!row) return;
  const now = Date.now();
  if (row.size > limits.maxBytes) {
    const stub = notKeptPayload(
      taskIdOf(row.head.startsWith('"headers"') ? `{${row.head}` : row.head),
    );
    s.kill.run(notKeptReason(reason, row.size, limits.maxBytes), now, stub, handle.id, handle.tag);
  } else {
    s.kill.run(reason, now, null, handle.id, handle.tag);
  }
  if (schedule?.due(row.queue, row.size, now) ?? true) trim(s, row.queue, limits, now);
}

export function listDeadLetters(s: Statements, queue: string, limit: number): DeadLetter[] {
  return s.list.all(queue, limit).map(storedDeadLetter);
}

/** The ids of the dead letters `selection` picks, oldest first. */
function pick(
  s: Statements,
  queue: string,
  { taskId, limit }: DeadLetterSelection,
  replayable: boolean,
): string {
  const rows = deadLetterCountLimit(limit) ?? -1;
  const id = taskId ?? null;
  return JSON.stringify(s.pick.all(queue, id, id, replayable ? 1 : 0, rows).map((r) => r.id));
}

export function replayDeadLetters(
  s: Statements,
  queue: string,
  selection: DeadLetterSelection,
): number {
  return s.replay.run(pick(s, queue, selection, true)).changes;
}

export function purgeDeadLetters(
  s: Statements,
  queue: string,
  selection: DeadLetterSelection,
): number {
  return s.purge.run(pick(s, queue, selection, false)).changes;
}
