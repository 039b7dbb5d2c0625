import type { AtomicPublisher, Transport } from "@celery-ts/core";
import { createPublishRegistry } from "@celery-ts/core/driver";
import type { Redis } from "ioredis";
import type { KeyLayout } from "./keys.ts";
import { queuedMessage } from "./queued-message.ts";
import { runScript } from "./scripts.ts";
import { compareAndSetArgs, PUBLISH_IF_SET } from "./store-scripts.ts";

/** What a store needs to publish as a Redis transport does. */
export interface QueueLayout {
  keys: KeyLayout;
  /** The server and database, as `ResolvedConnection.target` describes it. */
  target: string;
  /** Throws CLOSED once the transport is closed. */
  ensureOpen(): void;
}

/** The layouts of this package's transports (see `createPublishRegistry`). */
const layouts = createPublishRegistry<QueueLayout>();

export const registerQueueLayout = layouts.register;

/** What the store gives: where it is, its key names, and a way to run a command on it. */
export interface StoreSide {
  target: string;
  keyOf(key: string): string;
  run<T>(work: (client: Redis) => Promise<T>): Promise<T>;
}

/**
 * The atomic publisher of a Redis store and a Redis transport on the same server and database: a
 * compare-and-set of the store's key and the transport's publish in one Lua script. Undefined for
 * any other transport, or one on another server or database.
 */
export function redisAtomicPublisher(
  store: StoreSide,
  transport: Transport,
): AtomicPublisher | undefined {
  const layout = layouts.of(transport);
  if (!layout || layout.target !== store.target) return undefined;
  const { keys } = layout;
  return {
    async publishIfSet(message, options, record) {
      layout.ensureOpen();
      const { expected, value, fence } = record;
      const args = compareAndSetArgs(expected, value, fence ? { fence } : {});
      const { list, raw } = queuedMessage(keys, message, options);
      const [bindings, member] = keys.declaration(options.queue);
      const scriptKeys = [
        store.keyOf(record.key),
        store.keyOf(record.fence?.key ?? record.key),
        list,
        bindings,
      ];
      const reply = await store.run((client) =>
        runScript(client, PUBLISH_IF_SET, scriptKeys, [...args, raw, member]),
      );
      return reply === 1;
    },
  };
}
