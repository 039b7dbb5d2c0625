import type { Logger, PublishItem, PublishOptions, WireMessage } from "@celery-ts/core";
import type { Redis } from "ioredis";
import { registerQueueLayout } from "./atomic-publish.ts";
import type { KeyLayout } from "./keys.ts";
import { createPublisher } from "./publish-batch.ts";
import { createDeadLetterCommands } from "./dead-letter-commands.ts";
import { execChecked } from "./redis-primitives.ts";

/**
 * The transport's own commands, besides consuming: publish (kombu's LPUSH), purge, dead letters.
 */
export function createQueueCommands(options: {
  keys: KeyLayout;
  /** The server and database (`ResolvedConnection.target`): a store on it can publish atomically. */
  target: string;
  /** A command on the main connection, bounded and mapped. */
  command<T>(work: (client: Redis) => Promise<T>): Promise<T>;
  /** Maps a Redis error to the transport's (commands of a MULTI that Redis refused). */
  mapError(error: unknown): unknown;
  /** Throws CLOSED after close(). */
  ensureOpen(): void;
  /** Dead letters on: deadLetters(), replayDeadLetters() and purgeDeadLetters() are there. */
  deadLetters: boolean;
  /** Told of a kombu binding Redis refused (the message itself was queued). */
  logger: Logger;
}) {
  const { keys, command, ensureOpen, logger } = options;
  const publisher = createPublisher({ keys, command, mapError: options.mapError, logger });
  const queueCommands = {
    async publish(message: WireMessage, options: PublishOptions) {
      ensureOpen();
      await publisher.publish(message, options);
    },
    /** The whole batch in one round trip (bindings of new queues included). */
    async publishBatch(batch: readonly PublishItem[]) {
      ensureOpen();
      await publisher.publishBatch(batch);
    },
    async purge(queue: string): Promise<number> {
      ensureOpen();
      const lists = keys.lists(queue);
      const results = await command(async (client) => {
        const transaction = client.multi();
        for (const list of lists) transaction.llen(list).del(list);
        return execChecked(await transaction.exec());
      });
      return results
        .filter((_result, i) => i % 2 === 0)
        .reduce<number>((sum, n) => sum + Number(n), 0);
    },
    async depth(queue: string): Promise<number> {
      ensureOpen();
      const lists = keys.lists(queue);
      const lengths = await command((client) =>
        Promise.all(lists.map((list) => client.llen(list))),
      );
      return lengths.reduce<number>((sum, n) => sum + n, 0);
    },
  };
  // The store on the same database finds the layout by this publish function (see atomic-publish).
  registerQueueLayout(queueCommands.publish, { keys, target: options.target, ensureOpen });
  if (!options.deadLetters) return queueCommands;
  return { ...queueCommands, ...createDeadLetterCommands(keys, command, ensureOpen) };
}
