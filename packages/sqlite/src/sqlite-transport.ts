import { randomUUID } from "node:crypto";
import {
  decodeEnvelope,
  encodeEnvelope,
  isCeleryTsError,
  silentLogger,
  type CeleryTsError,
  type ConsumeOptions,
  type DeadLetter,
  type Delivery,
  type Logger,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
  type WireMessage,
} from "@celery-ts/core";
import type Database from "better-sqlite3";
import { notifyChange, subscribeToChanges } from "./internal/change-feed.ts";
import { createConnection } from "./internal/connection.ts";
import { durationOption } from "./internal/options.ts";

export interface SqliteTransportOptions {
  /**
   * The database file, created if missing (its directory must exist). Relative to the working
   * directory unless absolute. Every process that shares the file shares the queues.
   */
  path: string;
  /**
   * How long a delivered message stays reserved for its consumer. The lease is renewed while the
   * message is outstanding, so this is how long the messages of a crashed process wait before
   * they are redelivered, not a limit on how long a task may run.
   * @default 30_000
   */
  leaseMs?: number;
  /**
   * How often a consumer with room for more messages looks for them: messages from other
   * processes when file watching is unavailable, delayed messages that came due, expired leases.
   * A publish from this process wakes it at once.
   * @default 50
   */
  pollIntervalMs?: number;
  /** Where errors the transport recovers from are reported. @default silentLogger */
  logger?: Logger;
}

const CAPABILITIES: TransportCapabilities = {
  delayedDelivery: "native",
  priority: "higher-first",
  deadLetter: true,
  redelivery: "after-lease",
};

// Table and index names carry our prefix so the queue can share a file with an application's
// own tables. `payload` is the kombu envelope, readable by Python tooling.
const SCHEMA = `
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

interface Candidate {
  id: number;
  priority: number;
}

interface Reserved {
  id: number;
  tag: string;
  queue: string;
  payload: unknown;
  delivered: number;
}

interface ClaimRequest {
  queues: readonly string[];
  /** The same queues as a JSON array, for `json_each`. */
  queuesJson: string;
}

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare<[string, number, number, string]>(
      "INSERT INTO celery_ts_messages (queue, priority, available_at, payload) VALUES (?, ?, ?, ?)",
    ),
    // Walks the queue's ready index in delivery order, so it reads about `limit` rows.
    readyIn: db.prepare<[string, number, number], Candidate>(
      `SELECT id, priority FROM celery_ts_messages
       WHERE queue = ? AND state = 'ready' AND available_at <= ?
       ORDER BY priority DESC, id LIMIT ?`,
    ),
    // Leases of consumers that died: few rows, found by the lease index.
    expiredIn: db.prepare<[number, string, number], Candidate>(
      `SELECT id, priority FROM celery_ts_messages
       WHERE state = 'reserved' AND lease_until <= ? AND queue IN (SELECT value FROM json_each(?))
       ORDER BY priority DESC, id LIMIT ?`,
    ),
    reserve: db.prepare<[number, string, number], Omit<Reserved, "tag">>(
      `UPDATE celery_ts_messages
       SET state = 'reserved', lease_until = ?, delivery_tag = ?, delivered = delivered + 1
       WHERE id = ? RETURNING id, queue, payload, delivered`,
    ),
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
    deadLetter: db.prepare<[string, number, number, string]>(
      `UPDATE celery_ts_messages
       SET state = 'dead', dead_reason = ?, dead_at = ?, lease_until = NULL, delivery_tag = NULL
       WHERE id = ? AND delivery_tag = ?`,
    ),
    purge: db.prepare<[string]>(
      "DELETE FROM celery_ts_messages WHERE queue = ? AND state = 'ready'",
    ),
    deadLetters: db.prepare<[string, number], DeadLetter>(
      `SELECT queue, payload AS raw, dead_reason AS reason, dead_at AS rejectedAt
       FROM celery_ts_messages WHERE queue = ? AND state = 'dead' ORDER BY dead_at, id LIMIT ?`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Up to `limit` messages due on the queues, in delivery order: higher priority, then older. */
function dueMessages(
  s: Statements,
  request: ClaimRequest,
  now: number,
  limit: number,
): Candidate[] {
  const found = request.queues.flatMap((queue) => s.readyIn.all(queue, now, limit));
  found.push(...s.expiredIn.all(now, request.queuesJson, limit));
  return found.sort((a, b) => b.priority - a.priority || a.id - b.id).slice(0, limit);
}

function prepare(db: Database.Database) {
  const statements = prepareStatements(db);
  // Run with `.immediate()`: BEGIN IMMEDIATE takes the write lock before reading, so no other
  // process can claim the same rows between our SELECT and UPDATE.
  const claim = db.transaction((request: ClaimRequest, limit: number, leaseMs: number) => {
    const now = Date.now();
    return dueMessages(statements, request, now, limit).flatMap(({ id }): Reserved[] => {
      const tag = randomUUID();
      const row = statements.reserve.get(now + leaseMs, tag, id);
      return row ? [{ ...row, tag }] : [];
    });
  });
  return { ...statements, claim };
}

/** Rows as the `json_each` parameters of `renew` and `requeue`: their ids, then their tags. */
function asJson(rows: readonly { id: number; tag: string }[]): [string, string] {
  return [JSON.stringify(rows.map((row) => row.id)), JSON.stringify(rows.map((row) => row.tag))];
}

interface Lease {
  id: number;
  /** Frees the consumer's prefetch slot. */
  release(): void;
}

/**
 * The embedded broker: queues in one SQLite file that several processes can share. Delivered
 * messages are leased to their consumer and the lease is renewed while they are outstanding; a
 * process that dies stops renewing, and its messages come back once their leases run out.
 */
export function createSqliteTransport(options: SqliteTransportOptions): Transport {
  const leaseMs = durationOption("leaseMs", options.leaseMs, 30_000);
  const pollIntervalMs = durationOption("pollIntervalMs", options.pollIntervalMs, 50);
  const logger = options.logger ?? silentLogger;
  const connection = createConnection({
    path: options.path,
    what: "transport",
    schema: SCHEMA,
    prepare,
  });
  /** This connection's outstanding deliveries, by delivery tag. */
  const leases = new Map<string, Lease>();
  const stopConsumers = new Set<() => void>();
  let renewTimer: NodeJS.Timeout | undefined;

  const leasedRows = (): { id: number; tag: string }[] =>
    [...leases].map(([tag, lease]) => ({ id: lease.id, tag }));

  const renew = (): void => {
    renewTimer = undefined;
    if (leases.size === 0) return;
    try {
      connection.use((s) => s.renew.run(Date.now() + leaseMs, ...asJson(leasedRows())));
    } catch (error) {
      logger.warn("sqlite: could not renew leases, retrying", { error });
    }
    scheduleRenewal();
  };

  // A third of the lease leaves two more tries before it runs out. Unref'd: outstanding messages
  // alone must not keep a process alive (if it exits, the leases run out and they come back).
  const scheduleRenewal = (): void => {
    if (renewTimer || leases.size === 0) return;
    renewTimer = setTimeout(renew, leaseMs / 3);
    renewTimer.unref();
  };

  /** Acks or rejects a delivery once; later calls do nothing. */
  const settle = (tag: string, write: (s: Statements, id: number) => void): void => {
    connection.use((s) => {
      const lease = leases.get(tag);
      if (!lease) return;
      write(s, lease.id);
      leases.delete(tag);
      lease.release();
    });
  };

  const toDelivery = (row: Reserved): Delivery => {
    const actions = {
      queue: row.queue,
      deliveryTag: row.tag,
      redelivered: row.delivered > 1,
      async ack() {
        settle(row.tag, (s, id) => s.ack.run(id, row.tag));
      },
      async reject({ requeue, reason }: { requeue: boolean; reason?: string }) {
        settle(row.tag, (s, id) => {
          if (requeue) {
            s.requeue.run(...asJson([{ id, tag: row.tag }]));
            notifyChange(connection.path);
          } else {
            s.deadLetter.run(reason ?? "rejected", Date.now(), id, row.tag);
          }
        });
      },
    };
    const raw = String(row.payload);
    try {
      return { ...actions, message: decodeEnvelope(raw).message };
    } catch (error) {
      return { ...actions, error: error as CeleryTsError, raw };
    }
  };

  /** Puts reserved rows back on their queues at once, for any consumer. */
  const handBack = (rows: readonly { id: number; tag: string }[]): void => {
    if (rows.length === 0) return;
    try {
      connection.use((s) => s.requeue.run(...asJson(rows)));
      notifyChange(connection.path);
    } catch (error) {
      logger.warn("sqlite: could not hand back messages; they return after their lease", { error });
    }
  };

  const claimDue = (request: ClaimRequest, limit: number): Reserved[] =>
    connection.use((s) =>
      // Look before locking: an idle poll must not take the write lock that publishers need.
      dueMessages(s, request, Date.now(), limit).length === 0
        ? []
        : s.claim.immediate(request, limit, leaseMs),
    );

  return {
    name: "sqlite",
    capabilities: CAPABILITIES,
    async connect() {
      connection.use(() => undefined);
    },
    async close({ force = false } = {}) {
      if (connection.closed) return;
      stopConsumers.forEach((stop) => stop());
      clearTimeout(renewTimer);
      renewTimer = undefined;
      // Forced, the leases run out as after a crash; otherwise other consumers get them now.
      if (!force) handBack(leasedRows());
      leases.clear();
      connection.close();
    },
    async publish(message: WireMessage, { queue, priority = 0, availableAt = 0 }: PublishOptions) {
      const raw = encodeEnvelope(message, {
        exchange: "",
        routingKey: queue,
        priority,
        deliveryTag: randomUUID(),
      });
      connection.use((s) => s.insert.run(queue, priority, availableAt, raw));
      notifyChange(connection.path);
    },
    consume(queues, onDelivery, options: ConsumeOptions) {
      const { signal } = options;
      return new Promise<void>((resolve, reject) => {
        const unique = [...new Set(queues)];
        const request: ClaimRequest = { queues: unique, queuesJson: JSON.stringify(unique) };
        let outstanding = 0;
        let stopped = false;
        let scheduled = false;
        let timer: NodeJS.Timeout | undefined;

        const finish = (error?: unknown): void => {
          if (stopped) return;
          stopped = true;
          clearTimeout(timer);
          unsubscribe();
          signal.removeEventListener("abort", stop);
          stopConsumers.delete(stop);
          if (error === undefined) resolve();
          else reject(error);
        };
        const stop = (): void => finish();
        const wake = (): void => {
          if (stopped || scheduled) return;
          scheduled = true;
          setImmediate(pump);
        };
        const pump = (): void => {
          scheduled = false;
          clearTimeout(timer);
          timer = undefined;
          const room = options.prefetch - outstanding;
          // Full: a settled delivery wakes us.
          if (stopped || room <= 0) return;
          let claimed: Reserved[];
          try {
            claimed = claimDue(request, room);
          } catch (error) {
            if (!isCeleryTsError(error) || !error.retryable) return finish(error);
            logger.warn("sqlite: could not claim messages, retrying", { error });
            timer = setTimeout(pump, pollIntervalMs);
            return;
          }
          for (const [index, row] of claimed.entries()) {
            outstanding++;
            leases.set(row.tag, {
              id: row.id,
              release() {
                outstanding--;
                wake();
              },
            });
            scheduleRenewal();
            try {
              onDelivery(toDelivery(row));
            } catch (error) {
              // A throwing callback ends this consumer; the messages it never saw go back.
              handBack(claimed.slice(index + 1));
              return finish(error);
            }
          }
          // Fewer than asked for: nothing else is due; look again later.
          if (claimed.length < room) timer = setTimeout(pump, pollIntervalMs);
        };

        const unsubscribe = subscribeToChanges(connection.path, wake);
        stopConsumers.add(stop);
        if (signal.aborted) return stop();
        signal.addEventListener("abort", stop, { once: true });
        // Never call onDelivery from inside consume(). The first claim opens the connection; a
        // CONFIG or CLOSED error then rejects consume().
        wake();
      });
    },
    async purge(queue) {
      return connection.use((s) => s.purge.run(queue).changes);
    },
    async deadLetters(queue, { limit } = {}) {
      // SQLite reads a negative LIMIT as none.
      const rows =
        limit === undefined || !Number.isFinite(limit) ? -1 : Math.max(0, Math.floor(limit));
      return connection.use((s) => s.deadLetters.all(queue, rows));
    },
  };
}
