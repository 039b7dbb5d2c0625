import { createHash, randomUUID } from "node:crypto";
import {
  SendMessageBatchCommand,
  SendMessageCommand,
  type SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import {
  encodeEnvelope,
  settleBatch,
  type PublishItem,
  type PublishOptions,
  type WireMessage,
} from "@celery-ts/core";
import { AVAILABLE_AT } from "./attributes.ts";
import { createBatcher, type Batcher, type EntryResult } from "./batcher.ts";
import { encodeMessageBody } from "./body.ts";
import { entryError, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES } from "./calls.ts";
import type { SqsCaller } from "./client.ts";
import { isQueueMissing, mapSqsError, PKG, type ErrorContext } from "./errors.ts";
import type { QueueDirectory, QueueInfo } from "./queue-directory.ts";

interface Outgoing {
  info: QueueInfo;
  entry: Omit<SendMessageBatchRequestEntry, "Id" | "MessageBody"> & { MessageBody: string };
}

export interface SenderOptions {
  caller: SqsCaller;
  directory: QueueDirectory;
  /** Seconds a send waits for others to the same queue. */
  batchWindow: number;
  /** The longest DelaySeconds used. */
  maxDelay: number;
  base64: boolean;
  messageGroupId: string | ((message: WireMessage, queue: string) => string) | undefined;
}

function bytesOf(entry: Outgoing["entry"]): number {
  let size = Buffer.byteLength(entry.MessageBody, "utf8");
  for (const [name, value] of Object.entries(entry.MessageAttributes ?? {})) {
    size += name.length + (value.DataType?.length ?? 0) + (value.StringValue?.length ?? 0);
  }
  return size;
}

/**
 * FIFO deduplication: the task id, so that a publish retried after a lost response is not
 * queued twice. A Celery retry re-sends the same id with `retries + 1`, so that goes in too.
 */
function deduplicationId(message: WireMessage): string {
  const own = message.properties.MessageDeduplicationId;
  if (typeof own === "string" && own !== "") return own;
  const { id, retries } = message.headers;
  if (typeof id !== "string" || id === "") return randomUUID();
  const key = typeof retries === "number" && retries > 0 ? `${id}:${retries}` : id;
  // SQS takes 1-128 printable ASCII characters.
  return /^[!-~]{1,128}$/.test(key) ? key : createHash("sha256").update(key).digest("hex");
}

/** Splits one queue's entries into SendMessageBatch calls: at most 10 entries and 256 KiB each. */
function batchesOf(items: readonly Outgoing[]): Outgoing[][] {
  const out: Outgoing[][] = [];
  let current: Outgoing[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = bytesOf(item.entry);
    if (
      current.length >= MAX_BATCH_ENTRIES ||
      (current.length > 0 && bytes + size > MAX_BATCH_BYTES)
    ) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** One SendMessage(Batch) call to a queue; one result per entry, in order. */
async function send(
  caller: SqsCaller,
  url: string,
  items: readonly Outgoing[],
): Promise<EntryResult<void>[]> {
  const [first] = items;
  const context: ErrorContext = {
    action: items.length === 1 ? "SendMessage" : "SendMessageBatch",
    ...(first && { queue: first.info.name, sqsName: first.info.sqsName }),
  };
  if (first && items.length === 1) {
    try {
      await caller.call(context, (c) =>
        c.send(new SendMessageCommand({ QueueUrl: url, ...first.entry })),
      );
      return [{ ok: true, value: undefined }];
    } catch (error) {
      return [{ ok: false, error }];
    }
  }
  const { Failed = [] } = await caller.call(context, (c) =>
    c.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: items.map(({ entry }, index) => ({ ...entry, Id: String(index) })),
      }),
    ),
  );
  const failures = new Map(Failed.map((failed) => [failed.Id, failed]));
  return items.map((item, index) => {
    const failed = failures.get(String(index));
    return failed
      ? {
          ok: false,
          error: mapSqsError(entryError(failed), {
            ...context,
            queue: item.info.name,
            sqsName: item.info.sqsName,
          }),
        }
      : { ok: true, value: undefined };
  });
}

/**
 * One queue's part of a batch, in order: its SendMessageBatch calls one after the other, so
 * that a FIFO queue keeps the batch's order. After a call that failed as a whole (the SDK's
 * retries spent), the rest are not sent: they are reported unsent with its error.
 */
async function sendInOrder(
  caller: SqsCaller,
  items: readonly Outgoing[],
): Promise<EntryResult<void>[]> {
  const results: EntryResult<void>[] = [];
  for (const batch of batchesOf(items)) {
    let thrown: { error: unknown } | undefined;
    const done = await send(caller, batch[0]!.info.url, batch).catch((error: unknown) => {
      thrown = { error };
      return [];
    });
    results.push(...done);
    if (thrown) {
      const { error } = thrown;
      const rest = items.length - results.length;
      results.push(
        ...Array.from({ length: rest }, (): EntryResult<void> => ({ ok: false, error })),
      );
      break;
    }
  }
  return results;
}

/** A FIFO message's group: its own `MessageGroupId` property, else the option's, else "default". */
function messageGroupId(options: SenderOptions, message: WireMessage, queue: string): string {
  const own = message.properties.MessageGroupId;
  if (typeof own === "string" && own !== "") return own;
  const option = options.messageGroupId;
  return typeof option === "function" ? option(message, queue) : (option ?? "default");
}

/** The SQS entry of a message (encoding errors before any I/O but the queue's lookup). */
async function prepare(
  options: SenderOptions,
  message: WireMessage,
  { queue, priority = 0, availableAt }: PublishOptions,
): Promise<Outgoing> {
  const info = await options.directory.resolve(queue);
  const envelope = encodeEnvelope(message, {
    exchange: "",
    routingKey: queue,
    priority,
    deliveryTag: randomUUID(),
  });
  const entry: Outgoing["entry"] = { MessageBody: encodeMessageBody(envelope, options.base64) };
  const delayMs = availableAt === undefined ? 0 : availableAt - Date.now();
  if (availableAt !== undefined && delayMs > 0) {
    entry.MessageAttributes = {
      [AVAILABLE_AT]: { DataType: "Number", StringValue: String(Math.ceil(availableAt)) },
    };
    // FIFO queues take no per-message delay: consumers hide the message until it is due.
    if (!info.fifo) entry.DelaySeconds = Math.min(Math.ceil(delayMs / 1000), options.maxDelay);
  }
  if (info.fifo) {
    entry.MessageGroupId = messageGroupId(options, message, queue);
    entry.MessageDeduplicationId = deduplicationId(message);
  }
  return { info, entry };
}

/** Publishes: envelopes to message bodies, batched per queue with SendMessageBatch. */
export function createSender(options: SenderOptions) {
  const { caller, directory } = options;
  const sender = createBatcher<Outgoing, void>({
    windowMs: options.batchWindow * 1000,
    maxEntries: MAX_BATCH_ENTRIES,
    maxBytes: MAX_BATCH_BYTES,
    run: (url, items) => send(caller, url, items),
  });

  /** Deleted behind our back: the next publish looks it up (and creates it) again. */
  const forgetMissing = (info: QueueInfo, error: unknown): void => {
    if (isQueueMissing(error) && !info.predefined) directory.forget(info.name);
  };

  return {
    batcher: sender as Batcher<Outgoing, void>,
    async publish(message: WireMessage, publishOptions: PublishOptions) {
      const { info, entry } = await prepare(options, message, publishOptions);
      try {
        await sender.add(info.url, { info, entry }, bytesOf(entry));
      } catch (error) {
        forgetMissing(info, error);
        throw error;
      }
    },
    /**
     * Every message, in SendMessageBatch calls of up to 10 per queue (queues side by side); each
     * message that SQS refused is named in the error (`settleBatch`), none is dropped.
     */
    async publishBatch(batch: readonly PublishItem[]) {
      const prepared = await Promise.all(
        batch.map((item) => prepare(options, item.message, item.options)),
      );
      const byQueue = new Map<string, number[]>();
      prepared.forEach((item, index) => {
        const indexes = byQueue.get(item.info.url) ?? [];
        if (indexes.length === 0) byQueue.set(item.info.url, indexes);
        indexes.push(index);
      });
      const outcomes: PromiseSettledResult<void>[] = new Array(batch.length);
      await Promise.all(
        [...byQueue.values()].map(async (indexes) => {
          const results = await sendInOrder(
            caller,
            indexes.map((index) => prepared[index]!),
          );
          results.forEach((result, i) => {
            const index = indexes[i]!;
            if (result.ok) outcomes[index] = { status: "fulfilled", value: undefined };
            else {
              forgetMissing(prepared[index]!.info, result.error);
              outcomes[index] = { status: "rejected", reason: result.error };
            }
          });
        }),
      );
      settleBatch(batch, outcomes, PKG);
    },
  };
}
