import { randomUUID } from "node:crypto";
import {
  encodeEnvelope,
  type AtomicPublisher,
  type PublishOptions,
  type Transport,
  type WireMessage,
} from "@celery-ts/core";
import { createPublishRegistry } from "@celery-ts/core/driver";
import { notifyChange } from "./change-feed.ts";

/** A message as the row the transport stores: queue, priority, due time, kombu envelope. */
export type MessageRow = [queue: string, priority: number, availableAt: number, payload: string];

/** The row of a message, as `publish()` inserts it; every path that publishes encodes with this. */
export function messageRow(
  message: WireMessage,
  { queue, priority = 0, availableAt = 0 }: PublishOptions,
): MessageRow {
  const raw = encodeEnvelope(message, {
    exchange: "",
    routingKey: queue,
    priority,
    deliveryTag: randomUUID(),
  });
  return [queue, priority, availableAt, raw];
}

/** What a store needs of a SQLite transport to publish as it does. */
export interface TransportFile {
  /** The absolute path of its database file. */
  path: string;
  /** Throws CLOSED once the transport is closed. */
  ensureOpen(): void;
}

/** The files of this package's transports (see `createPublishRegistry`). */
const files = createPublishRegistry<TransportFile>();

export const registerTransportFile = files.register;

/**
 * The atomic publisher of a SQLite store and a SQLite transport on the same file: one IMMEDIATE
 * transaction that checks the fence and the record, writes the record and inserts the message
 * row. `publishIfSet(row, ...)` is the store's transaction. Undefined for any other transport.
 */
export function sqliteAtomicPublisher(
  storePath: string,
  transport: Transport,
  publishIfSet: (
    row: MessageRow,
    record: Parameters<AtomicPublisher["publishIfSet"]>[2],
  ) => boolean,
): AtomicPublisher | undefined {
  const file = files.of(transport);
  if (!file || file.path !== storePath) return undefined;
  return {
    async publishIfSet(message, options, record) {
      file.ensureOpen();
      const published = publishIfSet(messageRow(message, options), record);
      if (published) notifyChange(storePath, "messages");
      return published;
    },
  };
}
