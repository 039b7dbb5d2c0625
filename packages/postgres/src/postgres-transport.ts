import { silentLogger, type Logger, type PublishItem, type Transport } from "@celery-ts/core";
import {
  createConnectionEvents,
  createConsumerKit,
  durationOption,
  toMs,
  deliveryLimits,
  oversizeReason,
  type DeliveryLimitOptions,
  type DriverPrimitives,
  type MessageSource,
  type TakenMessage,
  withDeadLetters,
} from "@celery-ts/core/driver";
import { messageColumns, registerTransportTable } from "./internal/atomic-publish.ts";
import { Database, PKG, quoteSchema } from "./internal/database.ts";
import { PostgresDeadLetters } from "./internal/dead-letters.ts";

export interface PostgresTransportOptions extends DeliveryLimitOptions {
  /** The database, as a libpq URL. @default "postgres://127.0.0.1:5432/postgres" */
  url?: string;
  /** The schema of the `celery_ts_messages` table, created if missing. @default "public" */
  schema?: string;
  /**
   * Seconds a delivered message stays leased to its consumer. The lease is renewed every third
   * of it while the message is outstanding: this is how long the messages of a crashed process
   * wait before they are redelivered, not a limit on how long a task may run. A process whose
   * event loop is blocked for longer than this cannot renew: raise it for such tasks.
   * @default 8 (a dead worker's messages are back within 10 s)
   */
  visibilityTimeout?: number;
  /**
   * Seconds between looks for due messages when no NOTIFY came: delayed messages that came due
   * and expired leases. A publish wakes consumers at once through LISTEN/NOTIFY.
   * @default 1
   */
  pollInterval?: number;
  /** Where errors the transport recovers from are reported. @default silentLogger */
  logger?: Logger;
}

/** The table and its index; `delivered` counts deliveries, `lease_tag` names the current one. */
const ddl = (t: string, schema: string): string => `
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${t} (
  id bigserial PRIMARY KEY,
  queue text NOT NULL,
  priority smallint NOT NULL DEFAULT 0,
  available_at bigint NOT NULL DEFAULT 0,
  payload text NOT NULL,
  delivered integer NOT NULL DEFAULT 0,
  lease_tag text,
  lease_until bigint,
  dead_reason text,
  dead_at bigint
);
CREATE INDEX IF NOT EXISTS celery_ts_messages_due ON ${t} (queue, priority DESC, id)
  WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS celery_ts_messages_dead ON ${t} (queue, dead_at, id)
  WHERE dead_at IS NOT NULL`;

/** A taken message: its row and the tag that says the lease is still this delivery's. */
type Handle = { id: string; tag: string };
type Row = {
  id: string;
  queue: string;
  priority: number;
  /** NULL when the message is over the size limit: it is dead-lettered unread. */
  payload: string | null;
  size: number;
  delivered: number;
  lease_tag: string;
};

interface PrimitiveSettings {
  visibilityMs: number;
  maxMessageBytes: number;
  dead: PostgresDeadLetters;
  logger: Logger;
}

/**
 * Leases up to `max` due messages of `queues`: not dead, not leased (or the lease ran out),
 * oldest of the most urgent first. SKIP LOCKED lets consumers on other connections claim other
 * rows at the same time. A row over the size limit comes back without its payload.
 */
async function leaseDue(
  db: Database,
  t: string,
  queues: readonly string[],
  max: number,
  settings: PrimitiveSettings,
): Promise<Row[]> {
  const now = Date.now();
  const { rows } = await db.query<Row>(
    "taking messages",
    `WITH due AS (
       SELECT id, octet_length(payload)::float8 AS size FROM ${t}
       WHERE queue = ANY($1::text[]) AND dead_at IS NULL AND available_at <= $2
         AND (lease_until IS NULL OR lease_until <= $2)
       ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED)
     UPDATE ${t} m SET delivered = m.delivered + 1, lease_tag = gen_random_uuid()::text,
       lease_until = $2::bigint + $4::bigint
     FROM due WHERE m.id = due.id
     RETURNING m.id, m.queue, m.priority, due.size, m.delivered, m.lease_tag,
       CASE WHEN due.size > $5 THEN NULL ELSE m.payload END AS payload`,
    [
      queues,
      now,
      Number.isFinite(max) ? max : 1_000,
      settings.visibilityMs,
      settings.maxMessageBytes,
    ],
  );
  return rows.sort((a, b) => b.priority - a.priority || Number(BigInt(a.id) - BigInt(b.id)));
}

/** Dead-letters the rows over the size limit, unread; returns the others as taken messages. */
async function sizeChecked(
  rows: readonly Row[],
  settings: PrimitiveSettings,
): Promise<TakenMessage<Handle>[]> {
  const { maxMessageBytes, dead, logger } = settings;
  const taken: TakenMessage<Handle>[] = [];
  for (const row of rows) {
    const handle = { id: row.id, tag: row.lease_tag };
    if (row.payload === null) {
      const reason = oversizeReason(row.size, maxMessageBytes);
      logger.error(`${PKG}: refused a message over the size limit`, { reason });
      await dead.kill(handle.id, handle.tag, reason);
      continue;
    }
    taken.push({
      handle,
      deliveryTag: row.lease_tag,
      queue: row.queue,
      raw: row.payload,
      redelivered: row.delivered > 1,
    });
  }
  return taken;
}

/**
 * Calls `wake` on each NOTIFY for one of `queues` (or when notifications may have been missed);
 * returns the unsubscribe. Until LISTEN is up (or while it reconnects) the kit's poll finds the
 * messages.
 */
function listenFor(db: Database, queues: readonly string[], wake: () => void): () => void {
  const mine = new Set(queues);
  let unsubscribe: (() => void) | undefined;
  let stopped = false;
  db.listen((queue) => (queue === undefined || mine.has(queue)) && wake()).then(
    (stop) => (stopped ? stop() : (unsubscribe = stop)),
    () => {},
  );
  return () => {
    stopped = true;
    unsubscribe?.();
  };
}

function postgresPrimitives(
  db: Database,
  t: string,
  channel: string,
  settings: PrimitiveSettings,
): DriverPrimitives<Handle> {
  const { visibilityMs, dead } = settings;
  const putBack = async (handles: readonly Handle[]): Promise<void> => {
    await db.query(
      "handing messages back",
      `WITH back AS (UPDATE ${t} SET lease_tag = NULL, lease_until = NULL
         WHERE id = ANY($1::bigint[]) AND lease_tag = ANY($2::text[]) RETURNING queue)
       SELECT pg_notify($3, queue) FROM back`,
      [handles.map((h) => h.id), handles.map((h) => h.tag), channel],
    );
  };
  return {
    open(queues): MessageSource<Handle> {
      return {
        async take({ max }) {
          const rows = await leaseDue(db, t, queues, max, settings);
          return { messages: await sizeChecked(rows, settings) };
        },
        subscribe: (wake) => listenFor(db, queues, wake),
      };
    },
    async ack({ id, tag }) {
      await db.query("acknowledging", `DELETE FROM ${t} WHERE id = $1 AND lease_tag = $2`, [
        id,
        tag,
      ]);
    },
    requeue: (handle) => putBack([handle]),
    handBack: putBack,
    deadLetter: ({ id, tag }, reason) => dead.kill(id, tag, reason),
    async extendLeases(handles) {
      await db.query(
        "renewing leases",
        `UPDATE ${t} SET lease_until = $1 WHERE id = ANY($2::bigint[]) AND lease_tag = ANY($3::text[])`,
        [Date.now() + visibilityMs, handles.map((h) => h.id), handles.map((h) => h.tag)],
      );
    },
  };
}

/**
 * Inserts messages in order (ids ascending, so delivered in that order) and wakes each queue's
 * consumers once, in one statement.
 */
async function insertMessages(
  db: Database,
  t: string,
  channel: string,
  batch: readonly PublishItem[],
): Promise<void> {
  const columns: [string[], number[], number[], string[]] = [[], [], [], []];
  for (const item of batch) {
    const [queue, priority, availableAt, envelope] = messageColumns(item);
    columns[0].push(queue);
    columns[1].push(priority);
    columns[2].push(availableAt);
    columns[3].push(envelope);
  }
  await db.query(
    "publishing",
    `WITH m AS (INSERT INTO ${t} (queue, priority, available_at, payload)
       SELECT queue, priority, available_at, payload
       FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::text[])
         WITH ORDINALITY AS b(queue, priority, available_at, payload, n)
       ORDER BY n RETURNING queue)
     SELECT pg_notify($5, queue) FROM (SELECT DISTINCT queue FROM m) AS q`,
    [...columns, channel],
  );
}

/**
 * A broker in a PostgreSQL table: consumers claim rows with `SELECT … FOR UPDATE SKIP LOCKED`
 * and hold them under a lease they renew; a publish wakes them with NOTIFY. A process that dies
 * stops renewing, and its messages come back once their leases run out.
 */
export function createPostgresTransport(options: PostgresTransportOptions = {}): Transport {
  const visibilityTimeout = durationOption(PKG, "visibilityTimeout", options.visibilityTimeout, 8);
  const pollInterval = durationOption(PKG, "pollInterval", options.pollInterval, 1);
  const logger = options.logger ?? silentLogger;
  const schema = quoteSchema(options.schema ?? "public");
  const t = `${schema}.celery_ts_messages`;
  const channel = `celery_ts_messages.${options.schema ?? "public"}`;
  const url = options.url ?? "postgres://127.0.0.1:5432/postgres";
  // Losses and returns of the pool's and the LISTEN connections, for `onConnectionEvent`.
  const connectionEvents = createConnectionEvents(logger);
  const db = new Database({
    url,
    what: "PostgreSQL transport",
    ddl: ddl(t, schema),
    channel,
    logger,
    onEvent: connectionEvents.emit,
  });
  const limits = deliveryLimits(PKG, options);
  const dead = new PostgresDeadLetters(db, t, channel, limits.deadLetters);
  const kit = createConsumerKit({
    pkg: PKG,
    what: "PostgreSQL transport",
    primitives: postgresPrimitives(db, t, channel, {
      visibilityMs: toMs(visibilityTimeout),
      maxMessageBytes: limits.maxMessageBytes,
      dead,
      logger,
    }),
    maxMessageBytes: limits.maxMessageBytes,
    logger,
    // The connection's loss and return are logged once by the Database, not each failed take.
    retryLogLevel: "debug",
    visibilityTimeout,
    pollInterval,
  });

  const insert = (batch: readonly PublishItem[]): Promise<void> =>
    insertMessages(db, t, channel, batch);

  const transport: Transport = {
    name: "postgres",
    capabilities: {
      delayedDelivery: "native",
      priority: "higher-first",
      deadLetter: limits.deadLetters !== undefined,
      redelivery: "after-lease",
      // A lease runs out, and a consumer's next poll claims the message.
      redeliveryWindow: visibilityTimeout + pollInterval,
      reportsConsuming: true,
    },
    async connect() {
      kit.ensureOpen();
      await db.ready();
    },
    async close({ force = false } = {}) {
      if (kit.closed) return;
      await kit.close({ force });
      await db.close();
    },
    async publish(message, options) {
      kit.ensureOpen();
      await kit.track(insert([{ message, options }]));
    },
    /** The whole batch in one statement (one round trip, one transaction). */
    async publishBatch(batch) {
      kit.ensureOpen();
      await kit.track(insert(batch));
    },
    consume: kit.consume,
    async purge(queue) {
      kit.ensureOpen();
      const { rowCount } = await db.query(
        "purging",
        `DELETE FROM ${t} WHERE queue = $1 AND dead_at IS NULL
           AND (lease_until IS NULL OR lease_until <= $2)`,
        [queue, Date.now()],
      );
      return rowCount ?? 0;
    },
    onConnectionEvent: connectionEvents.add,
  };
  // A store on the same database publishes and records in one statement (see atomic-publish).
  registerTransportTable(transport.publish, { url, table: t, channel, ensureOpen: kit.ensureOpen });
  return withDeadLetters(transport, kit.ensureOpen, limits.deadLetters && dead);
}
