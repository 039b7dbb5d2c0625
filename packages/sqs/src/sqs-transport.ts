import { createHash, randomUUID } from "node:crypto";
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClientConfig,
  type SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import {
  decodeEnvelope,
  encodeEnvelope,
  isCeleryTsError,
  silentLogger,
  type CeleryTsError,
  type ConsumeOptions,
  type DeadLetter,
  type Delivery,
  type Logger,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
  type WireMessage,
} from "@celery-ts/core";
import {
  AVAILABLE_AT,
  DEAD_AT,
  DEAD_QUEUE,
  DEAD_REASON,
  MAX_REASON_LENGTH,
} from "./internal/attributes.ts";
import { createBatcher, type EntryResult } from "./internal/batcher.ts";
import { decodeMessageBody, encodeMessageBody } from "./internal/body.ts";
import type { SqsCaller } from "./internal/client.ts";
import {
  closedError,
  configError,
  isLostReceipt,
  isQueueMissing,
  mapSqsError,
  type ErrorContext,
} from "./internal/errors.ts";
import { integerOption, millisecondsOption } from "./internal/options.ts";
import {
  createQueueDirectory,
  type PredefinedQueue,
  type QueueInfo,
} from "./internal/queue-directory.ts";
import { entityName } from "./internal/queue-names.ts";

export type { PredefinedQueue } from "./internal/queue-directory.ts";

export interface SqsTransportOptions {
  /**
   * The AWS region of the queues.
   * @default `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `"us-east-1"` (kombu's default)
   */
  region?: string;
  /**
   * The SQS endpoint URL, for an SQS-compatible server (`http://127.0.0.1:4566` for fauxqs or
   * LocalStack) or a VPC endpoint.
   * @default AWS's endpoint for the region (the SDK also reads `AWS_ENDPOINT_URL_SQS`)
   */
  endpoint?: string;
  /**
   * AWS credentials, or a function that provides them.
   * @default the AWS SDK's default chain: environment variables, shared config and credentials
   * files (`AWS_PROFILE`), SSO, web identity, ECS and EC2 instance roles
   */
  credentials?: SQSClientConfig["credentials"];
  /**
   * How many times the SDK makes a call that fails transiently (throttling, a 5xx, a dropped
   * connection), with exponential backoff, before the transport reports a retryable error.
   * @default 5
   */
  maxAttempts?: number;
  /**
   * An SQS client of your own. `region`, `endpoint`, `credentials` and `maxAttempts` are then
   * the client's, and `close()` leaves it open.
   * @default a client built from the options above
   */
  client?: SQSClient;
  /**
   * Put before every queue name on SQS, as kombu's `queue_name_prefix`: with `"prod-"`, the
   * queue `celery` is the SQS queue `prod-celery`.
   * @default ""
   */
  queueNamePrefix?: string;
  /**
   * Queues that exist already, by name: their URL, or `{ url, deadLetterUrl }`. When set, the
   * transport never creates or looks up queues (no `sqs:CreateQueue`, `sqs:GetQueueUrl` or
   * `sqs:ListQueues` permission needed), and a queue missing here is a `CONFIG` error. Keys are
   * celery-ts queue names or, as in kombu's `predefined_queues`, SQS names.
   * @default none: queues are looked up by name and created on first use
   */
  predefinedQueues?: Record<string, string | PredefinedQueue>;
  /**
   * How long a received message stays invisible to other consumers. The transport extends it
   * while the message is outstanding (every third of it), so this bounds how long the messages
   * of a crashed worker wait before another worker gets them, not how long a task may run.
   * Also the `VisibilityTimeout` of the queues the transport creates.
   * @default 1800 (kombu's default)
   */
  visibilityTimeoutSeconds?: number;
  /** Long polling: how long a receive waits for messages, 1 to 20. @default 10 (kombu's) */
  waitTimeSeconds?: number;
  /**
   * Base64-encode the JSON envelope in the SQS message body, as kombu does unless its
   * `sqs_base64_encoding` is off. Either form is read.
   * @default true
   */
  base64Encoding?: boolean;
  /**
   * More attributes for the queues the transport creates, as kombu's `sqs-creation-attributes`
   * (e.g. `{ KmsMasterKeyId: "alias/aws/sqs" }`). Existing queues are not changed.
   * @default {}
   */
  createAttributes?: Record<string, string>;
  /**
   * Give the queues the transport creates a redrive policy to their dead-letter queue
   * (`<name>-dlq`): SQS moves a message there once it has been received this many times
   * without being deleted (a task that kills its worker every time). Counted receives include
   * requeues, and, on FIFO queues, each wait of a message published with a delay.
   * @default none: no redrive policy
   */
  maxReceiveCount?: number;
  /**
   * The `MessageGroupId` of messages sent to FIFO queues, unless the message's properties carry
   * one (kombu's `MessageGroupId` property). Messages of one group are delivered one at a time,
   * in order.
   * @default "default" (kombu's)
   */
  messageGroupId?: string | ((message: WireMessage, queue: string) => string);
  /**
   * How long a publish waits for others to the same queue, to send them together with
   * SendMessageBatch. 0 batches the publishes made in the same turn of the event loop
   * (`Promise.all` over many `delay()` calls).
   * @default 0
   */
  sendBatchWindowMs?: number;
  /** How long an ack waits for others on the same queue, to delete them together. @default 5 */
  ackBatchWindowMs?: number;
  /**
   * The longest `DelaySeconds` used. SQS allows 900 (15 minutes); a later `availableAt` is
   * reached in hops of this length. Lower it only to test long delays quickly.
   * @default 900
   */
  maxDelaySeconds?: number;
  /** Where errors the transport recovers from are reported. @default silentLogger */
  logger?: Logger;
}

const CAPABILITIES: TransportCapabilities = {
  delayedDelivery: "native",
  priority: false,
  deadLetter: true,
  redelivery: "after-lease",
};

/** SQS's limits: 10 entries per batch call; we keep batches under the classic 256 KiB. */
const MAX_BATCH_ENTRIES = 10;
const MAX_BATCH_BYTES = 256 * 1024;
/** The longest visibility timeout SQS accepts, 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;
/** How long `deadLetters()` hides the messages it reads, at most, before it shows them again. */
const LISTING_VISIBILITY_SECONDS = 60;
const MAX_LISTED = 10_000;
const SYSTEM_ATTRIBUTES = [
  "ApproximateReceiveCount",
  "ApproximateFirstReceiveTimestamp",
  "SentTimestamp",
  "MessageGroupId",
] as const;

/** An outstanding delivery: the receipt its visibility is extended through. */
interface Lease {
  info: QueueInfo;
  message: Message & { ReceiptHandle: string };
  /** Frees the consumer's prefetch slot. */
  release(): void;
}

interface Outgoing {
  info: QueueInfo;
  entry: Omit<SendMessageBatchRequestEntry, "Id" | "MessageBody"> & { MessageBody: string };
}

/** The pseudo-error of one failed entry of a batch call, for `mapSqsError`. */
function entryError(failed: {
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
function on(info: QueueInfo, action: string): ErrorContext {
  return { action, queue: info.name, sqsName: info.sqsName };
}

function attribute(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
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

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * An Amazon SQS broker, compatible with kombu's SQS transport: the same queue names, the same
 * base64 JSON envelope in the message body. Received messages stay invisible while they are
 * outstanding (the transport extends their visibility timeout), so long tasks do not run twice.
 */
export function createSqsTransport(options: SqsTransportOptions = {}): Transport {
  const visibilityTimeout = integerOption(
    "visibilityTimeoutSeconds",
    options.visibilityTimeoutSeconds,
    1800,
    1,
    MAX_VISIBILITY_SECONDS,
  );
  const waitTimeSeconds = integerOption("waitTimeSeconds", options.waitTimeSeconds, 10, 1, 20);
  const maxDelaySeconds = integerOption("maxDelaySeconds", options.maxDelaySeconds, 900, 1, 900);
  const maxAttempts = integerOption("maxAttempts", options.maxAttempts, 5, 1, 100);
  const maxReceiveCount =
    options.maxReceiveCount === undefined
      ? undefined
      : integerOption("maxReceiveCount", options.maxReceiveCount, 1, 1, 1000);
  const sendWindowMs = millisecondsOption("sendBatchWindowMs", options.sendBatchWindowMs, 0);
  const ackWindowMs = millisecondsOption("ackBatchWindowMs", options.ackBatchWindowMs, 5);
  const base64 = options.base64Encoding ?? true;
  const logger = options.logger ?? silentLogger;
  const prefix = options.queueNamePrefix ?? "";
  const region =
    options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const endpointLabel = options.client
    ? undefined
    : (options.endpoint ?? `the AWS endpoint of ${region}`);
  if (options.endpoint !== undefined && !/^https?:\/\/[^/]/.test(options.endpoint)) {
    throw configError(
      `endpoint must be an http(s) URL such as http://127.0.0.1:4566, got ${JSON.stringify(options.endpoint)}`,
    );
  }

  let client = options.client;
  /** "closing": no new work; what was started finishes. "closed": the client is gone. */
  let state: "open" | "closing" | "closed" = "open";
  let forced = false;
  let closing: Promise<void> | undefined;
  let connecting: Promise<void> | undefined;

  const sdkClient = (): SQSClient => {
    client ??= new SQSClient({
      region,
      maxAttempts,
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      ...(options.credentials !== undefined && { credentials: options.credentials }),
      requestHandler: {
        connectionTimeout: 5_000,
        // A long poll answers within waitTimeSeconds; past that (and some slack) it is lost.
        requestTimeout: (waitTimeSeconds + 20) * 1_000,
        throwOnRequestTimeout: true,
        httpAgent: { keepAlive: true, maxSockets: 256 },
        httpsAgent: { keepAlive: true, maxSockets: 256 },
      },
      // The SDK's own warnings go to our logger, never to the console.
      logger: {
        debug: () => {},
        info: () => {},
        warn: (...content: unknown[]) =>
          logger.warn("sqs: AWS SDK warning", { detail: content.map(String).join(" ") }),
        error: (...content: unknown[]) =>
          logger.error("sqs: AWS SDK error", { detail: content.map(String).join(" ") }),
      },
    });
    return client;
  };

  const caller: SqsCaller = {
    async call(context, work) {
      if (state === "closed") throw closedError();
      try {
        return await work(sdkClient());
      } catch (error) {
        if (forced) throw closedError();
        throw mapSqsError(error, {
          ...context,
          ...(endpointLabel !== undefined && { endpoint: endpointLabel }),
        });
      }
    },
  };
  const call = caller.call.bind(caller);

  const directory = createQueueDirectory({
    caller,
    prefix,
    predefined: options.predefinedQueues,
    visibilityTimeoutSeconds: visibilityTimeout,
    createAttributes: options.createAttributes ?? {},
    maxReceiveCount,
  });

  const ensureOpen = (): void => {
    if (state !== "open") throw closedError();
  };

  /** Work under way that a graceful close() lets finish: sends, acks, polls, postponements. */
  const pending = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    pending.add(work);
    const done = (): void => void pending.delete(work);
    work.then(done, done);
    return work;
  };

  // ---- Sending -------------------------------------------------------------------------------

  const sender = createBatcher<Outgoing, void>({
    windowMs: sendWindowMs,
    maxEntries: MAX_BATCH_ENTRIES,
    maxBytes: MAX_BATCH_BYTES,
    async run(url, items): Promise<EntryResult<void>[]> {
      const [first] = items;
      const context: ErrorContext = {
        action: items.length === 1 ? "SendMessage" : "SendMessageBatch",
        ...(first && { queue: first.info.name, sqsName: first.info.sqsName }),
      };
      if (first && items.length === 1) {
        try {
          await call(context, (c) =>
            c.send(new SendMessageCommand({ QueueUrl: url, ...first.entry })),
          );
          return [{ ok: true, value: undefined }];
        } catch (error) {
          return [{ ok: false, error }];
        }
      }
      const { Failed = [] } = await call(context, (c) =>
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
    },
  });

  const messageGroupId = (message: WireMessage, queue: string): string => {
    const own = message.properties.MessageGroupId;
    if (typeof own === "string" && own !== "") return own;
    const option = options.messageGroupId;
    return typeof option === "function" ? option(message, queue) : (option ?? "default");
  };

  // ---- Deleting, and changing visibility -----------------------------------------------------

  const deleter = createBatcher<{ info: QueueInfo; receipt: string }, void>({
    windowMs: ackWindowMs,
    maxEntries: MAX_BATCH_ENTRIES,
    maxBytes: Number.POSITIVE_INFINITY,
    async run(url, items): Promise<EntryResult<void>[]> {
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
    },
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

  /**
   * Sets the visibility timeout of received messages of one queue, 10 per call. Returns the
   * receipts SQS no longer holds a message for; throws what fails the whole call.
   */
  const changeVisibility = async (
    info: QueueInfo,
    entries: readonly { receipt: string; seconds: number }[],
  ): Promise<Set<string>> => {
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
  };

  /** Makes received messages visible again at once, for any consumer. Logs what fails. */
  const handBack = async (info: QueueInfo, receipts: readonly string[]): Promise<void> => {
    if (receipts.length === 0) return;
    try {
      await changeVisibility(
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

  // ---- Visibility extension ------------------------------------------------------------------

  /** This connection's outstanding deliveries, by delivery tag. */
  const leases = new Map<string, Lease>();
  let renewTimer: NodeJS.Timeout | undefined;
  let renewing: Promise<void> | undefined;

  const renew = async (): Promise<void> => {
    const byQueue = new Map<string, { info: QueueInfo; tags: string[] }>();
    for (const [tag, lease] of leases) {
      const group = byQueue.get(lease.info.url) ?? { info: lease.info, tags: [] };
      group.tags.push(tag);
      byQueue.set(lease.info.url, group);
    }
    await Promise.all(
      [...byQueue.values()].map(async ({ info, tags }) => {
        const entries = tags.flatMap((tag) => {
          const lease = leases.get(tag);
          return lease
            ? [{ receipt: lease.message.ReceiptHandle, seconds: visibilityTimeout }]
            : [];
        });
        try {
          const lost = await changeVisibility(info, entries);
          for (const tag of tags) {
            const lease = leases.get(tag);
            if (lease && lost.has(lease.message.ReceiptHandle)) {
              logger.warn("sqs: lost the visibility of an outstanding message; it may run twice", {
                queue: info.name,
              });
            }
          }
        } catch (error) {
          if (forced) return;
          logger.warn("sqs: could not extend the visibility of outstanding messages, retrying", {
            queue: info.name,
            error: (error as Error).message,
          });
        }
      }),
    );
  };

  // A third of the timeout leaves two more tries before it runs out. Unref'd: outstanding
  // messages alone must not keep a process alive (if it exits, they come back after the timeout).
  const scheduleRenewal = (): void => {
    // Also while a graceful close() waits for receives under way: those messages stay ours.
    if (renewTimer || renewing || leases.size === 0 || forced || state === "closed") return;
    renewTimer = setTimeout(
      () => {
        renewTimer = undefined;
        renewing = renew().finally(() => {
          renewing = undefined;
          scheduleRenewal();
        });
      },
      (visibilityTimeout * 1000) / 3,
    );
    renewTimer.unref();
  };

  // ---- Deliveries ----------------------------------------------------------------------------

  /** Acks or rejects a delivery once; later calls do nothing, and all fail after close(). */
  const settle = async (tag: string, work: (lease: Lease) => Promise<void>): Promise<void> => {
    ensureOpen();
    const lease = leases.get(tag);
    if (!lease) return;
    leases.delete(tag);
    try {
      await track(work(lease));
    } finally {
      lease.release();
    }
  };

  const deadLetter = async (lease: Lease, reason: string): Promise<void> => {
    const { info, message } = lease;
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
    await call({ action: "SendMessage", queue: `${info.name}'s dead-letter queue` }, (c) =>
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
  };

  const toDelivery = (tag: string, lease: Lease): Delivery => {
    const { info, message } = lease;
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? "1");
    let redelivered = receives > 1;
    // On FIFO queues, a message published with a delay was received (and hidden) while it
    // waited; those receives are not deliveries.
    const availableAt = Number(attribute(message, AVAILABLE_AT));
    const firstReceived = Number(message.Attributes?.ApproximateFirstReceiveTimestamp);
    if (redelivered && info.fifo && firstReceived < availableAt) redelivered = false;
    const actions = {
      queue: info.name,
      deliveryTag: tag,
      redelivered,
      ack: () => settle(tag, () => remove(info, message.ReceiptHandle)),
      reject: ({ requeue, reason }: { requeue: boolean; reason?: string }) =>
        settle(tag, async (held) => {
          if (!requeue) return deadLetter(held, reason ?? "rejected");
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
        }),
    };
    const raw = decodeMessageBody(message.Body ?? "");
    try {
      return { ...actions, message: decodeEnvelope(raw).message };
    } catch (error) {
      return { ...actions, error: error as CeleryTsError, raw };
    }
  };

  /**
   * A message that is not due yet (published with `availableAt` beyond 15 minutes, or seen early
   * by a clock behind the publisher's). A standard queue gets it back later by re-sending it
   * with the remaining delay, then deleting this copy: never lost, never early. A FIFO queue
   * (no per-message delay) hides it until then, up to 12 hours at a time.
   */
  const postpone = async (info: QueueInfo, message: Message, availableAt: number) => {
    const receipt = message.ReceiptHandle ?? "";
    const seconds = Math.ceil((availableAt - Date.now()) / 1000);
    try {
      if (info.fifo) {
        await call(on(info, "ChangeMessageVisibility"), (c) =>
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
      await call(on(info, "SendMessage"), (c) =>
        c.send(
          new SendMessageCommand({
            QueueUrl: info.url,
            MessageBody: message.Body,
            ...(message.MessageAttributes && { MessageAttributes: message.MessageAttributes }),
            DelaySeconds: Math.min(Math.max(seconds, 1), maxDelaySeconds),
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
  };

  // ---- Consuming -----------------------------------------------------------------------------

  const stopConsumers = new Set<() => void>();
  const pollAborts = new Set<AbortController>();

  const receive = (info: QueueInfo, count: number, wait: number, signal: AbortSignal) =>
    call(on(info, "ReceiveMessage"), (c) =>
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

  interface Poller {
    queue: string;
    busy: boolean;
    lastPolledAt: number;
    failures: number;
    retryAt: number;
  }

  const consume = (
    queues: readonly string[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<void> => {
    const { signal } = options;
    return new Promise<void>((resolve, reject) => {
      const pollers: Poller[] = [...new Set(queues)].map((queue) => ({
        queue,
        busy: false,
        lastPolledAt: 0,
        failures: 0,
        retryAt: 0,
      }));
      let outstanding = 0;
      /** Prefetch slots promised to receives under way. */
      let reserved = 0;
      let stopped = false;
      let scheduled = false;
      let timer: NodeJS.Timeout | undefined;

      const finish = (error?: unknown): void => {
        if (stopped) return;
        stopped = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", stop);
        stopConsumers.delete(stop);
        if (error === undefined) resolve();
        else reject(error);
      };
      const stop = (): void => finish();
      const wake = (): void => {
        if (stopped || scheduled) return;
        scheduled = true;
        setImmediate(pump);
      };

      const deliver = (info: QueueInfo, message: Message & { ReceiptHandle: string }): void => {
        const tag = randomUUID();
        outstanding++;
        const lease: Lease = {
          info,
          message,
          release() {
            outstanding--;
            wake();
          },
        };
        leases.set(tag, lease);
        scheduleRenewal();
        onDelivery(toDelivery(tag, lease));
      };

      const handle = (info: QueueInfo, messages: Message[]): void => {
        for (const [index, message] of messages.entries()) {
          const { ReceiptHandle } = message;
          if (ReceiptHandle === undefined) continue;
          if (stopped) {
            // Stopped from inside onDelivery: the rest go back.
            const rest = messages.slice(index).flatMap((m) => m.ReceiptHandle ?? []);
            void track(handBack(info, rest));
            return;
          }
          const availableAt = Number(attribute(message, AVAILABLE_AT));
          if (availableAt > Date.now()) {
            void track(postpone(info, message, availableAt));
            continue;
          }
          try {
            deliver(info, { ...message, ReceiptHandle });
          } catch (error) {
            // A throwing callback ends this consumer; the messages it never saw go back.
            const rest = messages.slice(index + 1).flatMap((m) => m.ReceiptHandle ?? []);
            void track(handBack(info, rest));
            return finish(error);
          }
        }
      };

      const poll = async (poller: Poller, count: number, wait: number): Promise<void> => {
        poller.busy = true;
        const abort = new AbortController();
        pollAborts.add(abort);
        let info: QueueInfo | undefined;
        let messages: Message[] = [];
        let failure: unknown;
        try {
          info = await directory.resolve(poller.queue);
          messages = (await receive(info, count, wait, abort.signal)).Messages ?? [];
          poller.failures = 0;
        } catch (error) {
          failure = error;
        } finally {
          pollAborts.delete(abort);
          poller.busy = false;
          poller.lastPolledAt = Date.now();
          reserved -= count;
        }
        if (forced || state === "closed") return;
        if (failure !== undefined) {
          if (stopped) return;
          const missing = isQueueMissing(failure);
          if (!(isCeleryTsError(failure) && failure.retryable) && !(missing && !info?.predefined)) {
            return finish(failure);
          }
          // Deleted behind our back: look it up (and create it) again.
          if (missing) directory.forget(poller.queue);
          const backoff = Math.min(30_000, 500 * 2 ** poller.failures) * (0.5 + Math.random() / 2);
          poller.failures++;
          poller.retryAt = Date.now() + backoff;
          logger.warn("sqs: could not receive messages, retrying", {
            queue: poller.queue,
            retryInMs: Math.round(backoff),
            error: (failure as Error).message,
          });
        } else if (info) {
          if (stopped) {
            await handBack(
              info,
              messages.flatMap((m) => m.ReceiptHandle ?? []),
            );
            return;
          }
          handle(info, messages);
        }
        wake();
      };

      const pump = (): void => {
        scheduled = false;
        clearTimeout(timer);
        timer = undefined;
        if (stopped) return;
        const now = Date.now();
        let free = options.prefetch - outstanding - reserved;
        const idle = pollers.filter((p) => !p.busy).sort((a, b) => a.lastPolledAt - b.lastPolledAt);
        const ready = idle.filter((p) => p.retryAt <= now);
        // More queues than free slots: poll briefly, so that the others get their turn soon.
        const wait = ready.length > free ? Math.min(1, waitTimeSeconds) : waitTimeSeconds;
        for (const [index, poller] of ready.entries()) {
          if (free <= 0) break;
          const count = Math.min(
            MAX_BATCH_ENTRIES,
            Math.max(1, Math.floor(free / (ready.length - index))),
          );
          free -= count;
          reserved += count;
          void track(poll(poller, count, wait));
        }
        const backingOff = idle.filter((p) => p.retryAt > now);
        if (backingOff.length > 0) {
          const next = Math.min(...backingOff.map((p) => p.retryAt));
          timer = setTimeout(wake, next - now);
        }
      };

      if (state !== "open") return reject(closedError());
      stopConsumers.add(stop);
      if (signal.aborted) return stop();
      signal.addEventListener("abort", stop, { once: true });
      // Never call onDelivery from inside consume().
      wake();
    });
  };

  // ---- Dead letters --------------------------------------------------------------------------

  /**
   * Reads a dead-letter queue without consuming it: receives every message (hiding each for up
   * to a minute, so that the next receive returns others), then makes them all visible again.
   */
  const listDeadLetters = async (queue: string, url: string): Promise<DeadLetter[]> => {
    const seen = new Map<string, Message>();
    const receipts: string[] = [];
    const info: QueueInfo = {
      name: `${queue}'s dead-letter queue`,
      sqsName: url.split("/").pop() ?? url,
      url,
      fifo: url.endsWith(".fifo"),
      predefined: true,
    };
    try {
      while (seen.size < MAX_LISTED) {
        const { Messages = [] } = await call(on(info, "ReceiveMessage"), (c) =>
          c.send(
            new ReceiveMessageCommand({
              QueueUrl: url,
              MaxNumberOfMessages: MAX_BATCH_ENTRIES,
              WaitTimeSeconds: 1,
              VisibilityTimeout: LISTING_VISIBILITY_SECONDS,
              MessageAttributeNames: ["All"],
              MessageSystemAttributeNames: ["SentTimestamp"],
            }),
          ),
        );
        if (Messages.length === 0) break;
        for (const message of Messages) {
          if (message.ReceiptHandle) receipts.push(message.ReceiptHandle);
          if (message.MessageId && !seen.has(message.MessageId))
            seen.set(message.MessageId, message);
        }
      }
    } finally {
      await handBack(info, receipts);
    }
    return [...seen.values()]
      .filter((message) => (attribute(message, DEAD_QUEUE) ?? queue) === queue)
      .map((message) => ({
        queue,
        raw: decodeMessageBody(message.Body ?? ""),
        reason:
          attribute(message, DEAD_REASON) ??
          "moved to the dead-letter queue by the queue's redrive policy (received too many times)",
        rejectedAt: Number(attribute(message, DEAD_AT) ?? message.Attributes?.SentTimestamp ?? 0),
      }))
      .sort((a, b) => a.rejectedAt - b.rejectedAt);
  };

  // ---- The transport -------------------------------------------------------------------------

  return {
    name: "sqs",
    capabilities: CAPABILITIES,
    async connect() {
      ensureOpen();
      connecting ??= (async () => {
        if (options.predefinedQueues) {
          // Checks each URL and the permission to use it; creates nothing.
          await Promise.all(
            Object.keys(options.predefinedQueues).map(async (queue) => {
              const info = await directory.resolve(queue);
              await call(on(info, "GetQueueAttributes"), (c) =>
                c.send(
                  new GetQueueAttributesCommand({
                    QueueUrl: info.url,
                    AttributeNames: ["QueueArn"],
                  }),
                ),
              );
            }),
          );
          return;
        }
        const namePrefix = entityName(prefix);
        await call({ action: "ListQueues" }, (c) =>
          c.send(
            new ListQueuesCommand({
              MaxResults: 1,
              ...(namePrefix !== "" && { QueueNamePrefix: namePrefix }),
            }),
          ),
        );
      })();
      try {
        await connecting;
      } catch (error) {
        connecting = undefined;
        throw error;
      }
    },
    close({ force = false } = {}) {
      closing ??= (async () => {
        state = "closing";
        stopConsumers.forEach((stop) => stop());
        const stopRenewing = (): void => {
          clearTimeout(renewTimer);
          renewTimer = undefined;
        };
        if (force) {
          stopRenewing();
          // As after a crash: nothing flushed or handed back; the messages come back when their
          // visibility timeout runs out.
          forced = true;
          pollAborts.forEach((abort) => abort.abort());
          sender.cancel(closedError());
          deleter.cancel(closedError());
          leases.clear();
        } else {
          sender.flush();
          deleter.flush();
          // Sends, acks and postponements finish; receives under way finish and hand back what
          // they got; then the outstanding deliveries go back for other consumers at once.
          while (pending.size > 0 || renewing) {
            await Promise.allSettled([...pending, renewing]);
          }
          stopRenewing();
          const byQueue = new Map<string, { info: QueueInfo; receipts: string[] }>();
          for (const { info, message } of leases.values()) {
            const group = byQueue.get(info.url) ?? { info, receipts: [] };
            group.receipts.push(message.ReceiptHandle);
            byQueue.set(info.url, group);
          }
          leases.clear();
          await Promise.all([...byQueue.values()].map((g) => handBack(g.info, g.receipts)));
        }
        state = "closed";
        if (!options.client) client?.destroy();
      })();
      return closing;
    },
    async publish(message: WireMessage, { queue, priority = 0, availableAt }: PublishOptions) {
      ensureOpen();
      const work = (async () => {
        const info = await directory.resolve(queue);
        const envelope = encodeEnvelope(message, {
          exchange: "",
          routingKey: queue,
          priority,
          deliveryTag: randomUUID(),
        });
        const entry: Outgoing["entry"] = { MessageBody: encodeMessageBody(envelope, base64) };
        const delayMs = availableAt === undefined ? 0 : availableAt - Date.now();
        if (availableAt !== undefined && delayMs > 0) {
          entry.MessageAttributes = {
            [AVAILABLE_AT]: { DataType: "Number", StringValue: String(Math.ceil(availableAt)) },
          };
          // FIFO queues take no per-message delay: consumers hide the message until it is due.
          if (!info.fifo) entry.DelaySeconds = Math.min(Math.ceil(delayMs / 1000), maxDelaySeconds);
        }
        if (info.fifo) {
          entry.MessageGroupId = messageGroupId(message, queue);
          entry.MessageDeduplicationId = deduplicationId(message);
        }
        try {
          await sender.add(info.url, { info, entry }, bytesOf(entry));
        } catch (error) {
          // Deleted behind our back: the next publish looks it up (and creates it) again.
          if (isQueueMissing(error) && !info.predefined) directory.forget(queue);
          throw error;
        }
      })();
      await track(work);
    },
    consume(queues, onDelivery, consumeOptions) {
      return consume(queues, onDelivery, consumeOptions);
    },
    async purge(queue) {
      ensureOpen();
      const info = await directory.find(queue);
      if (!info) return 0;
      const { Attributes } = await call(
        { action: "GetQueueAttributes", queue, sqsName: info.sqsName },
        (c) =>
          c.send(
            new GetQueueAttributesCommand({
              QueueUrl: info.url,
              AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
            }),
          ),
      );
      await call({ action: "PurgeQueue", queue, sqsName: info.sqsName }, (c) =>
        c.send(new PurgeQueueCommand({ QueueUrl: info.url })),
      );
      return (
        Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
        Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0)
      );
    },
    async deadLetters(queue, { limit } = {}) {
      ensureOpen();
      const info = await directory.find(queue);
      const url = info && (await directory.deadLetterUrl(info, false));
      if (!url) return [];
      const letters = await listDeadLetters(queue, url);
      return limit === undefined ? letters : letters.slice(0, Math.max(0, Math.floor(limit)));
    },
  };
}
