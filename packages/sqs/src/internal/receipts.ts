import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  type Message,
} from "@aws-sdk/client-sqs";
import type { Logger } from "@celery-ts/core";
import { createBatcher, type EntryResult } from "./batcher.ts";
import { chunks, entryError, MAX_BATCH_ENTRIES, on } from "./calls.ts";
import type { SqsCaller } from "./client.ts";
import { isLostReceipt, mapSqsError } from "./errors.ts";
import type { QueueInfo } from "./queue-directory.ts";

/** A received message this connection holds: its queue and its receipt. */
export interface Lease {
  info: QueueInfo;
  message: Message & { ReceiptHandle: string };
}

/** Deletes received messages of one queue: DeleteMessage for one, DeleteMessageBatch for more. */
async function deleteBatch(
  caller: SqsCaller,
  url: string,
  items: { info: QueueInfo; receipt: string }[],
): Promise<EntryResult<void>[]> {
  const call = caller.call.bind(caller);

  const [first] = items;
  if (!first) return [];
  const context = on(first.info, items.length === 1 ? "DeleteMessage" : "DeleteMessageBatch");
  if (items.length === 1) {
    await call(context, (c) =>
      c.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first.receipt })),
    );
    return [{ ok: true, value: undefined }];
  }
  const { Failed = [] } = await call(context, (c) =>
    c.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: items.map(({ receipt }, index) => ({
          Id: String(index),
          ReceiptHandle: receipt,
        })),
      }),
    ),
  );
  const failures = new Map(Failed.map((failed) => [failed.Id, failed]));
  return items.map((item, index) => {
    const failed = failures.get(String(index));
    return failed
      ? { ok: false, error: { ...entryError(failed), info: item.info } }
      : { ok: true, value: undefined };
  });
}

/**
 * Sets the visibility timeout of received messages of one queue, 10 per call. Returns the
 * receipts SQS no longer holds a message for; throws what fails the whole call.
 */
async function changeVisibility(
  caller: SqsCaller,
  info: QueueInfo,
  entries: readonly { receipt: string; seconds: number }[],
): Promise<Set<string>> {
  const call = caller.call.bind(caller);
  const lost = new Set<string>();
  for (const batch of chunks(entries, MAX_BATCH_ENTRIES)) {
    const { Failed = [] } = await call(on(info, "ChangeMessageVisibilityBatch"), (c) =>
      c.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: info.url,
          Entries: batch.map(({ receipt, seconds }, index) => ({
            Id: String(index),
            ReceiptHandle: receipt,
            VisibilityTimeout: seconds,
          })),
        }),
      ),
    );
    for (const failed of Failed) {
      const entry = batch[Number(failed.Id)];
      if (entry) lost.add(entry.receipt);
    }
  }
  return lost;
}

/**
 * What is done with receipts: deletes (batched per queue), visibility changes, hand-backs.
 */
export function createReceipts(options: {
  caller: SqsCaller;
  logger: Logger;
  /** Seconds a delete waits for others on the same queue. */
  ackBatchWindow: number;
}) {
  const { logger } = options;
  const call = options.caller.call.bind(options.caller);
  const deleter = createBatcher<{ info: QueueInfo; receipt: string }, void>({
    windowMs: options.ackBatchWindow * 1000,
    maxEntries: MAX_BATCH_ENTRIES,
    maxBytes: Number.POSITIVE_INFINITY,
    run: (url, items) => deleteBatch(options.caller, url, items),
  });

  /** Deletes a received message; a receipt that no longer holds it is not an error. */
  const remove = async (info: QueueInfo, receipt: string): Promise<void> => {
    try {
      await deleter.add(info.url, { info, receipt });
    } catch (error) {
      if (isLostReceipt(error)) {
        logger.warn("sqs: a message was deleted after its visibility lapsed; it may run again", {
          queue: info.name,
        });
        return;
      }
      throw mapSqsError(error, on(info, "DeleteMessage"));
    }
  };

  /** Makes received messages visible again at once, for any consumer. Logs what fails. */
  const handBack = async (info: QueueInfo, receipts: readonly string[]): Promise<void> => {
    if (receipts.length === 0) return;
    try {
      await changeVisibility(
        options.caller,
        info,
        receipts.map((receipt) => ({ receipt, seconds: 0 })),
      );
    } catch (error) {
      logger.warn("sqs: could not hand messages back; they return after their visibility timeout", {
        queue: info.name,
        error: (error as Error).message,
      });
    }
  };

  /** Makes one received message visible again at once; gone or visible already is fine. */
  const requeue = async ({ info, message }: Lease): Promise<void> => {
    try {
      await call(on(info, "ChangeMessageVisibility"), (c) =>
        c.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: info.url,
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: 0,
          }),
        ),
      );
    } catch (error) {
      // Visible again already, or gone: nothing to put back.
      if (!isLostReceipt(error)) throw error;
    }
  };

  /** Extends the visibility of held messages, grouped by queue; logs what it cannot. */
  const extend = async (leases: readonly Lease[], seconds: number): Promise<void> => {
    await Promise.all(
      groupByQueue(leases).map(async ({ info, receipts }) => {
        const lost = await changeVisibility(
          options.caller,
          info,
          receipts.map((receipt) => ({ receipt, seconds })),
        );
        if (lost.size > 0) {
          logger.warn("sqs: lost the visibility of an outstanding message; it may run twice", {
            queue: info.name,
          });
        }
      }),
    );
  };

  return { deleter, remove, handBack, requeue, extend };
}

/** Leases grouped by queue, for batch calls. */
export function groupByQueue(leases: readonly Lease[]): { info: QueueInfo; receipts: string[] }[] {
  const byQueue = new Map<string, { info: QueueInfo; receipts: string[] }>();
  for (const { info, message } of leases) {
    const group = byQueue.get(info.url) ?? { info, receipts: [] };
    group.receipts.push(message.ReceiptHandle);
    byQueue.set(info.url, group);
  }
  return [...byQueue.values()];
}
