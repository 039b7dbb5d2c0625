import {
  silentLogger,
  type Logger,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
  type WireMessage,
} from "@celery-ts/core";
import {
  deadLetterCountLimit,
  createConsumerKit,
  durationOption,
  toMs,
  deliveryLimits,
  oversizeReason,
  TrimSchedule,
  type DeliveryLimitOptions,
  type DeliveryLimits,
  type DriverPrimitives,
  type MessageSource,
} from "@celery-ts/core/driver";
import { createSqliteBroadcast } from "./fanout.ts";
import { messageRow, registerTransportFile } from "./internal/atomic-publish.ts";
import { notifyChange, subscribeToChanges } from "./internal/change-feed.ts";
import { createConnection, type Connection } from "./internal/connection.ts";
import {
  killRow,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
} from "./internal/dead-letters.ts";
import { PKG } from "./internal/errors.ts";
import {
  asJson,
  dueMessages,
  prepare,
  SCHEMA,
  type ClaimRequest,
  type Reserved,
} from "./internal/statements.ts";

export interface SqliteTransportOptions extends DeliveryLimitOptions {
  /**
   * The database file, created if missing (its directory must exist). Relative to the working
   * directory unless absolute. Every process that shares the file shares the queues.
   */
  path: string;
  /**
   * Seconds a delivered message stays reserved for its consumer (its lease). The lease is
   * renewed every third of it while the message is outstanding, so this is how long the messages
   * of a crashed process wait before they are redelivered, not a limit on how long a task may run.
   * A process whose event loop is blocked for longer than this cannot renew: raise it for such
   * tasks.
   * @default 8 (a dead worker's messages are back within 10 s)
   */
  visibilityTimeout?: number;
  /**
   * Seconds between looks for messages by a consumer with room for more: messages from other
   * processes when file watching is unavailable, delayed messages that came due, expired leases.
   * A publish from this process wakes it at once.
   * @default 0.05
   */
  pollInterval?: number;
  /** Where errors the transport recovers from are reported. @default silentLogger */
  logger?: Logger;
}

type Statements = ReturnType<typeof prepare>;
/** A delivery's row: its id, and the tag that says the lease is still this delivery's. */
type Handle = { id: number; tag: string };

function sqlitePrimitives(
  connection: Connection<Statements>,
  { visibilityMs, pollMs }: { visibilityMs: number; pollMs: number },
  limits: DeliveryLimits,
  logger: Logger,
): DriverPrimitives<Handle> {
  const { maxMessageBytes, deadLetters } = limits;
  const schedule = deadLetters && new TrimSchedule(deadLetters);
  const claimDue = (request: ClaimRequest, limit: number): Reserved[] =>
    connection.use((s) => {
      // Look before locking: an idle poll must not take the write lock that publishers need.
      const now = Date.now();
      const withExpired = now >= request.expiredLookAt;
      const found = dueMessages(s, request, now, limit, withExpired);
      if (withExpired) request.expiredLookAt = now + pollMs / 2;
      if (found.length === 0) return [];
      return s.claim.immediate(request, found, limit, visibilityMs, maxMessageBytes, (row) => {
        const reason = oversizeReason(row.size, maxMessageBytes);
        logger.error(`${PKG}: refused a message over the size limit`, { reason });
        killRow(s.dead, row, reason, deadLetters, schedule);
      });
    });
  const putBack = (handles: readonly Handle[]): void => {
    connection.use((s) => s.requeue.run(...asJson(handles)));
    notifyChange(connection.path, "messages");
  };
  return {
    open(queues): MessageSource<Handle> {
      const request: ClaimRequest = {
        queues,
        queuesJson: JSON.stringify(queues),
        expiredLookAt: 0,
      };
      return {
        async take({ max }) {
          const messages = claimDue(request, max).map((row) => ({
            handle: { id: row.id, tag: row.tag },
            deliveryTag: row.tag,
            queue: row.queue,
            raw: String(row.payload),
            redelivered: row.delivered > 1,
          }));
          return { messages };
        },
        subscribe: (wake) => subscribeToChanges(connection.path, "messages", wake),
      };
    },
    async ack({ id, tag }) {
      // In the file's group commit: the acks and results of one event-loop turn share one write.
      await connection.write((s) => s.ack.run(id, tag));
    },
    async requeue(handle) {
      putBack([handle]);
    },
    async deadLetter(handle, reason) {
      connection.use((s) => killRow(s.dead, handle, reason, deadLetters, schedule));
    },
    async extendLeases(handles) {
      connection.use((s) => s.renew.run(Date.now() + visibilityMs, ...asJson(handles)));
    },
    async handBack(handles) {
      putBack(handles);
    },
  };
}

/**
 * The embedded broker: queues in one SQLite file that several processes can share. Delivered
 * messages are leased to their consumer and the lease is renewed while they are outstanding; a
 * process that dies stops renewing, and its messages come back once their leases run out.
 */
export function createSqliteTransport(options: SqliteTransportOptions): Transport {
  const visibilityTimeout = durationOption(PKG, "visibilityTimeout", options.visibilityTimeout, 8);
  const pollInterval = durationOption(PKG, "pollInterval", options.pollInterval, 0.05);
  const logger = options.logger ?? silentLogger;
  const limits = deliveryLimits(PKG, options);
  const timings = { visibilityMs: toMs(visibilityTimeout), pollMs: toMs(pollInterval) };
  const capabilities: TransportCapabilities = {
    delayedDelivery: "native",
    priority: "higher-first",
    deadLetter: limits.deadLetters !== undefined,
    redelivery: "after-lease",
    // An expired lease is claimed by the next poll.
    redeliveryWindow: visibilityTimeout + pollInterval,
    reportsConsuming: true,
  };
  const connection = createConnection({
    path: options.path,
    what: "transport",
    schema: SCHEMA,
    prepare,
  });
  const kit = createConsumerKit({
    pkg: PKG,
    what: "SQLite transport",
    primitives: sqlitePrimitives(connection, timings, limits, logger),
    maxMessageBytes: limits.maxMessageBytes,
    logger,
    visibilityTimeout,
    pollInterval,
    // A claim is a write transaction: claiming for a quarter of the prefetch at once, rather than
    // for each freed slot, turns many small commits into few.
    batchWhenBusy: true,
    backoff: { initial: pollInterval, max: 1 },
  });

  const transport: Transport = {
    name: "sqlite",
    capabilities,
    broadcast: () => createSqliteBroadcast({ path: options.path, logger }),
    async connect() {
      connection.use(() => undefined);
    },
    async close({ force = false } = {}) {
      if (connection.closed) return;
      // Forced, the leases run out as after a crash; otherwise other consumers get them now.
      await kit.close({ force });
      connection.close();
    },
    async publish(message: WireMessage, options: PublishOptions) {
      const row = messageRow(message, options);
      await connection.write((s) => s.insert.run(...row), { notify: "messages" });
    },
    /** The whole batch in one transaction: every message, or none. */
    async publishBatch(batch) {
      const rows = batch.map((item) => messageRow(item.message, item.options));
      await connection.write((s) => s.insertMany(rows), { notify: "messages" });
    },
    // The first claim opens the connection; a CONFIG or CLOSED error then rejects consume().
    consume: kit.consume,
    async purge(queue) {
      return connection.use((s) => s.purge.run(queue).changes);
    },
    async depth(queue) {
      return connection.use((s) => s.depth.get(queue)?.n ?? 0);
    },
  };
  // A store on the same file publishes and records in one transaction (see atomic-publish).
  registerTransportFile(transport.publish, { path: connection.path, ensureOpen: kit.ensureOpen });
  if (!limits.deadLetters) return transport;
  return {
    ...transport,
    async deadLetters(queue, { limit } = {}) {
      // SQLite reads a negative LIMIT as none.
      const rows = deadLetterCountLimit(limit) ?? -1;
      return connection.use((s) => listDeadLetters(s.dead, queue, rows));
    },
    async replayDeadLetters(queue, selection = {}) {
      const replayed = connection.use((s) => replayDeadLetters(s.dead, queue, selection));
      if (replayed > 0) notifyChange(connection.path, "messages");
      return replayed;
    },
    async purgeDeadLetters(queue, selection = {}) {
      return connection.use((s) => purgeDeadLetters(s.dead, queue, selection));
    },
  };
}
