import {
  encodeEnvelope,
  silentLogger,
  type Broadcast,
  type BroadcastDelivery,
  type BroadcastQueue,
  type BroadcastSubscription,
  type ExchangeRef,
  type Logger,
  type WireMessage,
} from "@celery-ts/core";
import type Database from "better-sqlite3";
import { notifyChange, subscribeToChanges } from "./internal/change-feed.ts";
import { createConnection, type Connection } from "./internal/connection.ts";
import { bindingMatches, deliverBroadcast, durationOption, toMs } from "@celery-ts/core/driver";
import { PKG } from "./internal/errors.ts";

export interface SqliteBroadcastOptions {
  /** The database file the transport uses. */
  path: string;
  /** Seconds between looks for messages from other processes. @default 0.1 */
  pollInterval?: number;
  /** @default silentLogger */
  logger?: Logger;
}

// Bindings live while their subscriber renews them; messages while their queue's TTL allows.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS celery_ts_bindings (
  exchange TEXT NOT NULL,
  queue TEXT NOT NULL,
  binding_key TEXT NOT NULL,
  message_ttl_ms INTEGER,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (exchange, queue, binding_key)
);
CREATE TABLE IF NOT EXISTS celery_ts_broadcasts (
  id INTEGER PRIMARY KEY,
  queue TEXT NOT NULL,
  routing_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS celery_ts_broadcasts_queue ON celery_ts_broadcasts (queue, id);
`;

/** A binding lives this long unless its subscriber renews it (every third of it). */
const BINDING_TTL_MS = 30_000;
/** A message nobody read is dropped after this long when its queue sets no TTL. */
const DEFAULT_MESSAGE_TTL_MS = 60_000;

const prepare = (db: Database.Database) => ({
  bindings: db.prepare<
    [string, number],
    { queue: string; binding_key: string; message_ttl_ms: number | null }
  >(
    "SELECT queue, binding_key, message_ttl_ms FROM celery_ts_bindings WHERE exchange = ? AND expires_at > ?",
  ),
  bind: db.prepare(
    `INSERT INTO celery_ts_bindings (exchange, queue, binding_key, message_ttl_ms, expires_at)
     VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (exchange, queue, binding_key) DO UPDATE SET expires_at = excluded.expires_at`,
  ),
  unbind: db.prepare(
    "DELETE FROM celery_ts_bindings WHERE exchange = ? AND queue = ? AND binding_key = ?",
  ),
  put: db.prepare(
    "INSERT INTO celery_ts_broadcasts (queue, routing_key, payload, expires_at) VALUES (?, ?, ?, ?)",
  ),
  take: db.prepare<[string, number], { id: number; routing_key: string; payload: string }>(
    "SELECT id, routing_key, payload FROM celery_ts_broadcasts WHERE queue = ? AND expires_at > ? ORDER BY id",
  ),
  peek: db.prepare<[string, number], { id: number }>(
    "SELECT id FROM celery_ts_broadcasts WHERE queue = ? AND expires_at > ? LIMIT 1",
  ),
  remove: db.prepare("DELETE FROM celery_ts_broadcasts WHERE queue = ? AND id <= ?"),
  drop: db.prepare("DELETE FROM celery_ts_broadcasts WHERE queue = ?"),
  expire: db.prepare("DELETE FROM celery_ts_broadcasts WHERE expires_at <= ?"),
  expireBindings: db.prepare("DELETE FROM celery_ts_bindings WHERE expires_at <= ?"),
  db,
});

type Statements = ReturnType<typeof prepare>;

/**
 * Copies the message to the rows of every queue bound to the exchange that its routing key
 * reaches, in one transaction, and wakes this process's readers.
 */
function publishRows(
  connection: Connection<Statements>,
  exchange: ExchangeRef,
  routingKey: string,
  message: WireMessage,
): void {
  const now = Date.now();
  const raw = encodeEnvelope(message, {
    exchange: exchange.name,
    routingKey,
    priority: 0,
    deliveryTag: crypto.randomUUID(),
  });
  connection.use((s) =>
    s.db.transaction(() => {
      s.expire.run(now);
      for (const binding of s.bindings.all(exchange.name, now)) {
        if (!bindingMatches(exchange, binding.binding_key, routingKey)) continue;
        const ttl = binding.message_ttl_ms ?? DEFAULT_MESSAGE_TTL_MS;
        s.put.run(binding.queue, routingKey, raw, now + ttl);
      }
    })(),
  );
  notifyChange(connection.path, "broadcasts");
}

/** Reads and deletes the queue's live messages, oldest first, in one transaction. */
function takeRows(connection: Connection<Statements>, queue: string) {
  return connection.use((s) =>
    // Look first: most wake-ups are for other topics, and a read alone needs no transaction.
    s.peek.get(queue, Date.now()) === undefined
      ? []
      : s.db.transaction(() => {
          const taken = s.take.all(queue, Date.now());
          const last = taken.at(-1);
          if (last) s.remove.run(queue, last.id);
          return taken;
        })(),
  );
}

interface Binder {
  connection: Connection<Statements>;
  logger: Logger;
  pollMs: number;
}

/**
 * Binds `queue` to the exchange and delivers its messages, read on each change in this process
 * and every poll (other processes); the binding is renewed every third of its TTL. Returns the
 * unbind (idempotent), which drops the queue's waiting messages.
 */
function bindQueue(
  { connection, logger, pollMs }: Binder,
  exchange: ExchangeRef,
  queue: BroadcastQueue,
  bindingKey: string,
  onMessage: (delivery: BroadcastDelivery) => void,
): () => void {
  const ttl = queue.messageTtl === undefined ? null : Math.round(queue.messageTtl * 1000);
  const bind = () =>
    connection.use((s) => {
      s.bind.run(exchange.name, queue.name, bindingKey, ttl, Date.now() + BINDING_TTL_MS);
      s.expireBindings.run(Date.now());
    });
  bind();
  const read = (): void => {
    if (connection.closed) return;
    try {
      for (const row of takeRows(connection, queue.name)) {
        deliverBroadcast(PKG, logger, row.payload, row.routing_key, onMessage);
      }
    } catch (error) {
      logger.warn("sqlite: reading broadcasts failed; retrying", { error: String(error) });
    }
  };
  const unsubscribe = subscribeToChanges(connection.path, "broadcasts", read);
  const poller = setInterval(read, pollMs);
  const renewer = setInterval(() => {
    try {
      bind();
    } catch (error) {
      logger.warn("sqlite: could not renew a broadcast binding", { error: String(error) });
    }
  }, BINDING_TTL_MS / 3);
  poller.unref();
  renewer.unref();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    clearInterval(poller);
    clearInterval(renewer);
    unsubscribe();
    if (connection.closed) return;
    connection.use((s) => {
      s.unbind.run(exchange.name, queue.name, bindingKey);
      s.drop.run(queue.name);
    });
  };
}

/**
 * Remote control and events through the SQLite database: an exchange's bindings are rows, and
 * publishing copies the message to every matching subscriber's rows, which it reads and deletes.
 * Celery itself has no remote control on SQL brokers; this lets celery-ts workers sharing a
 * database file answer `celery-ts inspect`, `control` and `events` all the same.
 */
export function createSqliteBroadcast(options: SqliteBroadcastOptions): Broadcast {
  const logger = options.logger ?? silentLogger;
  const pollMs = toMs(durationOption(PKG, "pollInterval", options.pollInterval, 0.1));
  const connection = createConnection({
    path: options.path,
    what: "broadcast",
    schema: SCHEMA,
    prepare,
  });
  const closers = new Set<() => void>();
  return {
    name: "sqlite",
    async connect() {
      connection.use(() => undefined);
    },
    async close() {
      for (const close of [...closers]) close();
      connection.close();
    },
    async publish(exchange, routingKey, message) {
      publishRows(connection, exchange, routingKey, message);
    },
    async subscribe(exchange, queue, bindingKey, onMessage): Promise<BroadcastSubscription> {
      const unbind = bindQueue(
        { connection, logger, pollMs },
        exchange,
        queue,
        bindingKey,
        onMessage,
      );
      const close = (): void => {
        closers.delete(close);
        unbind();
      };
      closers.add(close);
      return { close: async () => close() };
    },
  };
}
