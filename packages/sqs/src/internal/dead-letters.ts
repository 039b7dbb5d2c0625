import { randomUUID } from "node:crypto";
import {
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
} from "@aws-sdk/client-sqs";
import { taskIdOf, type DeadLetter, type DeadLetterSelection } from "@celery-ts/core";
import { deadLetterCountLimit } from "@celery-ts/core/driver";
import { DEAD_AT, DEAD_QUEUE, DEAD_REASON, MAX_REASON_LENGTH } from "./attributes.ts";
import { decodeMessageBody } from "./body.ts";
import { attribute, MAX_BATCH_ENTRIES, on } from "./calls.ts";
import type { SqsCaller } from "./client.ts";
import { configError } from "./errors.ts";
import type { QueueDirectory, QueueInfo } from "./queue-directory.ts";
import type { Lease } from "./receipts.ts";

/** How long `deadLetters()` hides the messages it reads, at most, before it shows them again. */
const LISTING_VISIBILITY_SECONDS = 60;
const MAX_LISTED = 10_000;

/** What the dead letters are built from: the caller, the queues, and the receipts' calls. */
interface DeadLetterParts {
  caller: SqsCaller;
  directory: QueueDirectory;
  remove(info: QueueInfo, receipt: string): Promise<void>;
  handBack(info: QueueInfo, receipts: readonly string[]): Promise<void>;
}

/** A message received from a dead-letter queue, and the dead letter it holds. */
type Picked = { message: Message; letter: DeadLetter };

/** Sends a leased message to its queue's dead-letter queue, the reason as attributes; deletes it. */
async function sendToDeadLetterQueue(
  { caller, directory, remove }: DeadLetterParts,
  { info, message }: Lease,
  reason: string,
): Promise<void> {
  const url = await directory.deadLetterUrl(info, true);
  if (!url) {
    throw configError(
      `cannot dead-letter a message of the queue "${info.name}": it has no dead-letter queue; ` +
        "give it a redrive policy, or a deadLetterUrl in predefinedQueues",
    );
  }
  const attributes: Record<string, MessageAttributeValue> = {
    ...message.MessageAttributes,
    [DEAD_REASON]: { DataType: "String", StringValue: reason.slice(0, MAX_REASON_LENGTH) || "-" },
    [DEAD_QUEUE]: { DataType: "String", StringValue: info.name },
    [DEAD_AT]: { DataType: "Number", StringValue: String(Date.now()) },
  };
  await caller.call({ action: "SendMessage", queue: `${info.name}'s dead-letter queue` }, (c) =>
    c.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: message.Body,
        MessageAttributes: attributes,
        // A group of its own per letter: FIFO delivers one group's messages one batch at a
        // time, and deadLetters() must be able to read them all.
        ...(info.fifo && {
          MessageGroupId:
            `${message.Attributes?.MessageGroupId ?? "default"}.${randomUUID()}`.slice(-128),
          MessageDeduplicationId: randomUUID(),
        }),
      }),
    ),
  );
  await remove(info, message.ReceiptHandle);
}

function deadLetterQueueInfo(queue: string, url: string): QueueInfo {
  return {
    name: `${queue}'s dead-letter queue`,
    sqsName: url.split("/").pop() ?? url,
    url,
    fifo: url.endsWith(".fifo"),
    predefined: true,
  };
}

function letterOf(queue: string, message: Message): DeadLetter {
  const raw = decodeMessageBody(message.Body ?? "");
  const taskId = taskIdOf(raw);
  return {
    queue,
    raw,
    reason:
      attribute(message, DEAD_REASON) ??
      "moved to the dead-letter queue by the queue's redrive policy (received too many times)",
    rejectedAt: Number(attribute(message, DEAD_AT) ?? message.Attributes?.SentTimestamp ?? 0),
    ...(taskId !== undefined && { taskId }),
  };
}

/** What a sweep received: each message once by id, and the latest receipt of each. */
interface Received {
  seen: Map<string, Message>;
  receipts: Map<string, string>;
}

/**
 * Receives every message of a dead-letter queue, up to MAX_LISTED, into `received` (filled as
 * it goes, so that the receipts of a sweep that fails half-way are handed back). Each is hidden
 * for up to a minute, so that the next receive returns others.
 */
async function receiveAll(caller: SqsCaller, info: QueueInfo, received: Received): Promise<void> {
  const { seen, receipts } = received;
  while (seen.size < MAX_LISTED) {
    const { Messages = [] } = await caller.call(on(info, "ReceiveMessage"), (c) =>
      c.send(
        new ReceiveMessageCommand({
          QueueUrl: info.url,
          MaxNumberOfMessages: MAX_BATCH_ENTRIES,
          WaitTimeSeconds: 1,
          VisibilityTimeout: LISTING_VISIBILITY_SECONDS,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["SentTimestamp"],
        }),
      ),
    );
    if (Messages.length === 0) return;
    for (const message of Messages) {
      const id = message.MessageId ?? randomUUID();
      if (message.ReceiptHandle) receipts.set(id, message.ReceiptHandle);
      if (!seen.has(id)) seen.set(id, message);
    }
  }
}

/**
 * Goes through a dead-letter queue: receives every message of `queue`, oldest first; `pick`
 * chooses some, which `onPicked` handles and which are then deleted; the rest are made visible
 * again. Returns every dead letter of the queue.
 */
async function sweep(
  parts: DeadLetterParts,
  queue: string,
  url: string,
  pick: (letters: Picked[]) => Message[],
  onPicked: (message: Message) => Promise<void>,
): Promise<DeadLetter[]> {
  const received: Received = { seen: new Map(), receipts: new Map() };
  const info = deadLetterQueueInfo(queue, url);
  try {
    await receiveAll(parts.caller, info, received);
    const letters = [...received.seen.values()]
      .filter((message) => (attribute(message, DEAD_QUEUE) ?? queue) === queue)
      .map((message) => ({ message, letter: letterOf(queue, message) }))
      .sort((a, b) => a.letter.rejectedAt - b.letter.rejectedAt);
    for (const message of pick(letters)) {
      await onPicked(message);
      const id = message.MessageId ?? "";
      const receipt = received.receipts.get(id);
      received.receipts.delete(id);
      if (receipt) await parts.remove(info, receipt);
    }
    return letters.map(({ letter }) => letter);
  } finally {
    await parts.handBack(info, [...received.receipts.values()]);
  }
}

/** Sends a dead letter's message back to its queue, without the dead-letter attributes. */
async function replay(caller: SqsCaller, target: QueueInfo, message: Message): Promise<void> {
  const {
    [DEAD_REASON]: _reason,
    [DEAD_QUEUE]: _queue,
    [DEAD_AT]: _at,
    ...attributes
  } = message.MessageAttributes ?? {};
  await caller.call(on(target, "SendMessage"), (c) =>
    c.send(
      new SendMessageCommand({
        QueueUrl: target.url,
        MessageBody: message.Body,
        MessageAttributes: attributes,
        ...(target.fifo && { MessageGroupId: "default", MessageDeduplicationId: randomUUID() }),
      }),
    ),
  );
}

/** Takes the dead letters `selection` picks: replayed to `replayTo` (the queue), or deleted. */
async function takeDeadLetters(
  parts: DeadLetterParts,
  queue: string,
  url: string,
  { taskId, limit = Infinity }: DeadLetterSelection,
  replayTo: QueueInfo | undefined,
): Promise<number> {
  let taken = 0;
  const pick = (letters: Picked[]) =>
    letters
      .filter(({ letter }) => taskId === undefined || letter.taskId === taskId)
      .filter(({ letter }) => !replayTo || letter.raw !== "")
      .slice(0, limit)
      .map(({ message }) => message);
  await sweep(parts, queue, url, pick, async (message) => {
    if (replayTo) await replay(parts.caller, replayTo, message);
    taken++;
  });
  return taken;
}

/**
 * Dead letters on SQS: sent to the queue's dead-letter queue with the reason as attributes, and
 * read, replayed and purged there (`list`, `replay` and `purge`, for `withDeadLetters()`).
 */
export function createDeadLetters(parts: DeadLetterParts) {
  const { directory } = parts;
  const deadLetterQueue = async (queue: string) => {
    const info = await directory.find(queue);
    const url = info && (await directory.deadLetterUrl(info, false));
    return info && url ? { info, url } : undefined;
  };
  const take = async (queue: string, selection: DeadLetterSelection, replayed: boolean) => {
    const found = await deadLetterQueue(queue);
    if (!found) return 0;
    return takeDeadLetters(parts, queue, found.url, selection, replayed ? found.info : undefined);
  };
  return {
    deadLetter: (lease: Lease, reason: string) => sendToDeadLetterQueue(parts, lease, reason),
    /** Reads a dead-letter queue without consuming it. */
    async list(queue: string, limit: number | undefined): Promise<DeadLetter[]> {
      const found = await deadLetterQueue(queue);
      if (!found) return [];
      const letters = await sweep(
        parts,
        queue,
        found.url,
        () => [],
        async () => undefined,
      );
      return letters.slice(0, deadLetterCountLimit(limit));
    },
    replay: (queue: string, selection: DeadLetterSelection) => take(queue, selection, true),
    purge: (queue: string, selection: DeadLetterSelection) => take(queue, selection, false),
  };
}
