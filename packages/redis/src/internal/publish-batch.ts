import type { PublishItem } from "@celery-ts/core";
import type { ChainableCommander } from "ioredis";
import type { KeyLayout } from "./keys.ts";
import { queuedMessage } from "./queued-message.ts";

/**
 * Queues a batch of publishes on one pipeline (a MULTI, so the batch lands whole): kombu's
 * binding for each queue not declared yet on this connection, then one LPUSH per message, as
 * `publish()` does for one. The caller runs it in a single round trip.
 */
export function queueBatch(
  transaction: ChainableCommander,
  batch: readonly PublishItem[],
  keys: KeyLayout,
  declared: ReadonlySet<string>,
): string[] {
  const declaring = new Set<string>();
  for (const { options } of batch) {
    if (!declared.has(options.queue) && !declaring.has(options.queue)) {
      declaring.add(options.queue);
      transaction.sadd(...keys.declaration(options.queue));
    }
  }
  for (const { message, options } of batch) {
    const { list, raw } = queuedMessage(keys, message, options);
    transaction.lpush(list, raw);
  }
  return [...declaring];
}
