import type { Message } from "@aws-sdk/client-sqs";
import type { ErrorContext } from "./errors.ts";
import type { QueueInfo } from "./queue-directory.ts";

/** SQS's limits: 10 entries per batch call; we keep batches under the classic 256 KiB. */
export const MAX_BATCH_ENTRIES = 10;
export const MAX_BATCH_BYTES = 256 * 1024;
/** The longest visibility timeout SQS accepts, 12 hours. */
export const MAX_VISIBILITY_SECONDS = 43_200;

/** The pseudo-error of one failed entry of a batch call, for `mapSqsError`. */
export function entryError(failed: {
  Code?: string | undefined;
  Message?: string | undefined;
  SenderFault?: boolean | undefined;
}) {
  return {
    name: failed.Code ?? "Error",
    message: failed.Message ?? "the batch entry failed",
    $fault: failed.SenderFault ? "client" : "server",
  };
}

/** The error context of an action on a queue: both its names. */
export function on(info: QueueInfo, action: string): ErrorContext {
  return { action, queue: info.name, sqsName: info.sqsName };
}

export function attribute(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
