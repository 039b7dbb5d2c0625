import { randomUUID } from "node:crypto";
import {
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
} from "@aws-sdk/client-sqs";
import { isCeleryTsError, type Logger } from "@celery-ts/core";
import { connectionError, type MessageSource, type TakenMessage } from "@celery-ts/core/driver";
import { AVAILABLE_AT } from "./attributes.ts";
import { decodeMessageBody } from "./body.ts";
import { attribute, MAX_VISIBILITY_SECONDS, on } from "./calls.ts";
import type { SqsCaller } from "./client.ts";
import { isQueueMissing, PKG } from "./errors.ts";
import type { QueueDirectory, QueueInfo } from "./queue-directory.ts";
import type { Lease } from "./receipts.ts";

const SYSTEM_ATTRIBUTES = [
  "ApproximateReceiveCount",
  "ApproximateFirstReceiveTimestamp",
  "SentTimestamp",
  "MessageGroupId",
] as const;

export interface PollOptions {
  caller: SqsCaller;
  directory: QueueDirectory;
  logger: Logger;
  /** Seconds. */
  visibilityTimeout: number;
  /** Seconds a receive long-polls. */
  waitTime: number;
  /** The longest DelaySeconds used. */
  maxDelay: number;
  remove(info: QueueInfo, receipt: string): Promise<void>;
  /** Aborted by a forced close: receives under way are dropped. */
  forceSignal: AbortSignal;
  /** Work a graceful close waits for. */
  track<T>(work: Promise<T>): Promise<T>;
}

/** Whether a received message counts as redelivered. */
function isRedelivery(info: QueueInfo, message: Message): boolean {
  const receives = Number(message.Attributes?.ApproximateReceiveCount ?? "1");
  let redelivered = receives > 1;
  // On FIFO queues, a message published with a delay was received (and hidden) while it
  // waited; those receives are not deliveries.
  const availableAt = Number(attribute(message, AVAILABLE_AT));
  const firstReceived = Number(message.Attributes?.ApproximateFirstReceiveTimestamp);
  if (redelivered && info.fifo && firstReceived < availableAt) redelivered = false;
  return redelivered;
}

/** Receives up to `count` messages, waiting up to `wait` seconds for the first. */
function receive(
  { caller, visibilityTimeout }: PollOptions,
  info: QueueInfo,
  count: number,
  wait: number,
  signal: AbortSignal,
) {
  return caller.call(on(info, "ReceiveMessage"), (c) =>
    c.send(
      new ReceiveMessageCommand({
        QueueUrl: info.url,
        MaxNumberOfMessages: count,
        WaitTimeSeconds: wait,
        VisibilityTimeout: visibilityTimeout,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: [...SYSTEM_ATTRIBUTES],
        // A FIFO receive retried by the SDK after a lost response gets the same messages.
        ...(info.fifo && { ReceiveRequestAttemptId: randomUUID() }),
      }),
      { abortSignal: signal },
    ),
  );
}

/**
 * A message that is not due yet (published with `availableAt` beyond 15 minutes, or seen early
 * by a clock behind the publisher's). A standard queue gets it back later by re-sending it
 * with the remaining delay, then deleting this copy: never lost, never early. A FIFO queue
 * (no per-message delay) hides it until then, up to 12 hours at a time.
 */
async function postpone(
  { caller, maxDelay, remove, logger }: PollOptions,
  info: QueueInfo,
  message: Message,
  availableAt: number,
): Promise<void> {
  const receipt = message.ReceiptHandle ?? "";
  const seconds = Math.ceil((availableAt - Date.now()) / 1000);
  try {
    if (info.fifo) {
      await caller.call(on(info, "ChangeMessageVisibility"), (c) =>
        c.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: info.url,
            ReceiptHandle: receipt,
            VisibilityTimeout: Math.min(Math.max(seconds, 1), MAX_VISIBILITY_SECONDS),
          }),
        ),
      );
      return;
    }
    await caller.call(on(info, "SendMessage"), (c) =>
      c.send(
        new SendMessageCommand({
          QueueUrl: info.url,
          MessageBody: message.Body,
          ...(message.MessageAttributes && { MessageAttributes: message.MessageAttributes }),
          DelaySeconds: Math.min(Math.max(seconds, 1), maxDelay),
        }),
      ),
    );
    await remove(info, receipt);
  } catch (error) {
    // It comes back after its visibility timeout and is postponed again.
    logger.warn("sqs: could not postpone a delayed message; it is seen again later", {
      queue: info.name,
      error: (error as Error).message,
    });
  }
}

/** Why a receive failed, as the kit needs it: retryable unless nothing will change. */
function asTakeError(
  directory: QueueDirectory,
  error: unknown,
  queue: string,
  info: QueueInfo | undefined,
): unknown {
  if (!isQueueMissing(error) || info?.predefined) return error;
  // Deleted behind our back: look it up (and create it) again on the next try.
  directory.forget(queue);
  return isCeleryTsError(error) && error.retryable
    ? error
    : connectionError(PKG, `${(error as Error).message}; looking the queue up again`, {
        cause: error,
      });
}

/**
 * SQS consumers: one source per queue, each long-polling on its own (the kit shares the free
 * prefetch among them). Messages not due yet are postponed, not delivered.
 */
export function createPollers(options: PollOptions) {
  const { directory } = options;
  const open = (queue: string): MessageSource<Lease> => ({
    async take({ max, hurry }) {
      let info: QueueInfo | undefined;
      let messages: Message[];
      try {
        info = await directory.resolve(queue);
        // More queues than free slots: poll briefly, so that the others get their turn soon.
        const wait = hurry ? Math.min(1, options.waitTime) : options.waitTime;
        messages = (await receive(options, info, max, wait, options.forceSignal)).Messages ?? [];
      } catch (error) {
        throw asTakeError(directory, error, queue, info);
      }
      const taken: TakenMessage<Lease>[] = [];
      for (const message of messages) {
        const { ReceiptHandle } = message;
        if (ReceiptHandle === undefined) continue;
        const availableAt = Number(attribute(message, AVAILABLE_AT));
        if (availableAt > Date.now()) {
          void options.track(postpone(options, info, message, availableAt));
          continue;
        }
        const handle: Lease = { info, message: { ...message, ReceiptHandle } };
        const raw = decodeMessageBody(message.Body ?? "");
        taken.push({ handle, queue: info.name, raw, redelivered: isRedelivery(info, message) });
      }
      return { messages: taken };
    },
  });
  return { open };
}
