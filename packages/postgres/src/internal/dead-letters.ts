/** Dead letters in the messages table: bounds, replay and purge, in SQL. */
import type { DeadLetter, DeadLetterSelection } from "@celery-ts/core";
import {
  deadLetterCountLimit,
  notKeptPayload,
  notKeptReason,
  storedDeadLetter,
  taskIdOf,
  TrimSchedule,
  type DeadLetterLimits,
} from "@celery-ts/core/driver";
import type { Database } from "./database.ts";

/** The task id of a stored envelope, read from its headers without parsing it. */
const TASK_ID = `substring(payload from '"headers"\\s*:\\s*\\{[^}]*?"id"\\s*:\\s*"([^"]+)"')`;
const NOT_KEPT = `payload LIKE '{"celery_ts_not_kept":true%'`;

export class PostgresDeadLetters {
  readonly #db: Database;
  readonly #t: string;
  readonly #channel: string;
  readonly #limits: DeadLetterLimits | undefined;
  readonly #schedule: TrimSchedule | undefined;

  constructor(db: Database, t: string, channel: string, limits: DeadLetterLimits | undefined) {
    this.#db = db;
    this.#t = t;
    this.#channel = channel;
    this.#limits = limits;
    this.#schedule = limits && new TrimSchedule(limits);
  }

  /**
   * Dead-letters a delivered row (deletes it when dead letters are off), keeping only its task id
   * when it alone is over the byte bound; then drops the queue's oldest beyond the bounds.
   */
  async kill(id: string, tag: string, reason: string): Promise<void> {
    const [db, t, limits] = [this.#db, this.#t, this.#limits];
    if (!limits) {
      await db.query(
        "dropping a rejected message",
        `DELETE FROM ${t} WHERE id = $1 AND lease_tag = $2`,
        [id, tag],
      );
      return;
    }
    const { rows } = await db.query<{ queue: string; size: number; tail: string | null }>(
      "dead-lettering",
      `SELECT queue, octet_length(payload)::float8 AS size,
         CASE WHEN octet_length(payload) > $3 THEN right(payload, 262144) END AS tail
       FROM ${t} WHERE id = $1 AND lease_tag = $2`,
      [id, tag, limits.maxBytes],
    );
    const row = rows[0];
    if (!row) return;
    const over = row.tail !== null;
    await db.query(
      "dead-lettering",
      `UPDATE ${t} SET dead_at = $3, dead_reason = $4, payload = coalesce($5, payload),
         lease_tag = NULL, lease_until = NULL
       WHERE id = $1 AND lease_tag = $2`,
      [
        id,
        tag,
        Date.now(),
        over ? notKeptReason(reason, row.size, limits.maxBytes) : reason,
        over ? notKeptPayload(taskIdOf(row.tail!)) : null,
      ],
    );
    if (this.#schedule!.due(row.queue, row.size)) await this.#trim(row.queue, limits);
  }

  async #trim(queue: string, limits: DeadLetterLimits): Promise<void> {
    await this.#db.query(
      "trimming dead letters",
      `WITH dead AS (
         SELECT id, dead_at, row_number() OVER w AS n, sum(octet_length(payload)) OVER w AS total
         FROM ${this.#t} WHERE queue = $1 AND dead_at IS NOT NULL
         WINDOW w AS (ORDER BY dead_at DESC, id DESC))
       DELETE FROM ${this.#t} WHERE id IN (
         SELECT id FROM dead WHERE n > $2 OR total > $3 OR dead_at < $4)`,
      [queue, limits.maxCount, limits.maxBytes, Date.now() - limits.maxAge * 1000],
    );
  }

  async list(queue: string, limit: number | undefined): Promise<DeadLetter[]> {
    const { rows } = await this.#db.query<{ raw: string; reason: string; rejectedAt: number }>(
      "reading dead letters",
      `SELECT payload AS raw, dead_reason AS reason, dead_at::float8 AS "rejectedAt" FROM ${this.#t}
       WHERE queue = $1 AND dead_at IS NOT NULL ORDER BY dead_at, id LIMIT $2`,
      [queue, deadLetterCountLimit(limit) ?? null],
    );
    return rows.map((row) => storedDeadLetter({ queue, ...row }));
  }

  /** The rows `selection` picks, oldest first, as the SQL of a subquery (params $1-$4). */
  #pick(queue: string, { taskId, limit }: DeadLetterSelection, replayable: boolean) {
    return {
      sql: `SELECT id FROM ${this.#t} WHERE queue = $1 AND dead_at IS NOT NULL
              AND ($2::text IS NULL OR ${TASK_ID} = $2) AND (NOT $3 OR NOT ${NOT_KEPT})
            ORDER BY dead_at, id LIMIT $4`,
      params: [queue, taskId ?? null, replayable, deadLetterCountLimit(limit) ?? null],
    };
  }

  async replay(queue: string, selection: DeadLetterSelection): Promise<number> {
    const pick = this.#pick(queue, selection, true);
    const { rows } = await this.#db.query<{ n: string }>(
      "replaying dead letters",
      `WITH back AS (UPDATE ${this.#t} SET dead_at = NULL, dead_reason = NULL, delivered = 0,
           available_at = 0, lease_tag = NULL, lease_until = NULL
         WHERE id IN (${pick.sql}) RETURNING queue)
       SELECT (SELECT count(*) FROM back) AS n, pg_notify($5, $1)`,
      [...pick.params, this.#channel],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async purge(queue: string, selection: DeadLetterSelection): Promise<number> {
    const pick = this.#pick(queue, selection, false);
    const { rowCount } = await this.#db.query(
      "purging dead letters",
      `DELETE FROM ${this.#t} WHERE id IN (${pick.sql})`,
      pick.params,
    );
    return rowCount ?? 0;
  }
}
