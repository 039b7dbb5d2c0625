import { randomUUID } from "node:crypto";
import {
  encodeEnvelope,
  type AtomicPublisher,
  type PublishItem,
  type Transport,
} from "@celery-ts/core";
import { createPublishRegistry } from "@celery-ts/core/driver";

/** A message as the columns the transport stores: queue, priority, due time, kombu envelope. */
export type MessageColumns = [
  queue: string,
  priority: number,
  availableAt: number,
  payload: string,
];

/** The columns of a message, as `publish()` inserts it; every path that publishes encodes with this. */
export function messageColumns({ message, options }: PublishItem): MessageColumns {
  const { queue, priority = 0, availableAt = 0 } = options;
  const envelope = encodeEnvelope(message, {
    exchange: "",
    routingKey: queue,
    priority,
    deliveryTag: randomUUID(),
  });
  return [queue, priority, Math.round(availableAt), envelope];
}

/** What a store needs of a PostgreSQL transport to publish as it does. */
export interface TransportTable {
  /** The database, as the URL the transport connects with. */
  url: string;
  /** Its messages table, schema-qualified and quoted. */
  table: string;
  /** The NOTIFY channel that wakes its consumers. */
  channel: string;
  /** Throws CLOSED once the transport is closed. */
  ensureOpen(): void;
}

/** The tables of this package's transports (see `createPublishRegistry`). */
const tables = createPublishRegistry<TransportTable>();

export const registerTransportTable = tables.register;

/**
 * The atomic publisher of a PostgreSQL store and a PostgreSQL transport on the same database (the
 * same URL): one statement that checks the fence and the record, writes the record, inserts the
 * message row and wakes the queue's consumers. `run(table, columns, record)` is the store's
 * statement; it resolves to whether it wrote. Undefined for any other transport.
 */
export function postgresAtomicPublisher(
  storeUrl: string,
  transport: Transport,
  run: (
    table: TransportTable,
    columns: MessageColumns,
    record: Parameters<AtomicPublisher["publishIfSet"]>[2],
  ) => Promise<boolean>,
): AtomicPublisher | undefined {
  const table = tables.of(transport);
  if (!table || table.url !== storeUrl) return undefined;
  return {
    async publishIfSet(message, options, record) {
      table.ensureOpen();
      return run(table, messageColumns({ message, options }), record);
    },
  };
}
