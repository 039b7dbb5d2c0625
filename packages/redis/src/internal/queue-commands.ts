import type { PublishItem, PublishOptions, WireMessage } from "@celery-ts/core";
import type { Redis } from "ioredis";
import { registerQueueLayout } from "./atomic-publish.ts";
import type { KeyLayout } from "./keys.ts";
import { queueBatch } from "./publish-batch.ts";
import { queuedMessage } from "./queued-message.ts";
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
  /** Throws CLOSED after close(). */
  ensureOpen(): void;
  /** Dead letters on: deadLetters(), replayDeadLetters() and purgeDeadLetters() are there. */
  deadLetters: boolean;
}) {
  const { keys, command, ensureOpen } = options;
  /** Queues whose kombu binding this connection has declared. */
  const declared = new Set<string>();
  const queueCommands = {
    async publish(message: WireMessage, options: PublishOptions) {
      ensureOpen();
      const { queue } = options;
      const { list, raw } = queuedMessage(keys, message, options);
      // The binding is declared once per queue and connection, as kombu declares a queue once;
      // after that a publish is a single LPUSH.
      if (declared.has(queue)) {
        await command((client) => client.lpush(list, raw));
        return;
      }
      await command(async (client) =>
        execChecked(
          await client
            .multi()
            .sadd(...keys.declaration(queue))
            .lpush(list, raw)
            .exec(),
        ),
      );
      declared.add(queue);
    },
    /** The whole batch in one MULTI round trip (bindings of new queues included). */
    async publishBatch(batch: readonly PublishItem[]) {
      ensureOpen();
      const declaring = await command(async (client) => {
        const transaction = client.multi();
        const queues = queueBatch(transaction, batch, keys, declared);
        await execChecked(await transaction.exec());
        return queues;
      });
      for (const queue of declaring) declared.add(queue);
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
