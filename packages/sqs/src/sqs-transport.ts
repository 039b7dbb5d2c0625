import {
  GetQueueAttributesCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  type SQSClient,
  type SQSClientConfig,
} from "@aws-sdk/client-sqs";
import {
  silentLogger,
  type Logger,
  type Transport,
  type TransportCapabilities,
  type WireMessage,
} from "@celery-ts/core";
import {
  createConsumerKit,
  deliveryLimits,
  durationOption,
  type DeliveryLimitOptions,
  type DriverPrimitives,
  withDeadLetters,
} from "@celery-ts/core/driver";
import { MAX_BATCH_ENTRIES, MAX_VISIBILITY_SECONDS, on } from "./internal/calls.ts";
import type { SqsCaller } from "./internal/client.ts";
import { createDeadLetters } from "./internal/dead-letters.ts";
import { closedError, configError, PKG } from "./internal/errors.ts";
import { integerOption } from "./internal/options.ts";
import { createPollers } from "./internal/poll-source.ts";
import {
  createQueueDirectory,
  type PredefinedQueue,
  type QueueDirectory,
} from "./internal/queue-directory.ts";
import { entityName } from "./internal/queue-names.ts";
import { createReceipts, groupByQueue, type Lease } from "./internal/receipts.ts";
import { createSender } from "./internal/sender.ts";
import { buildClient, createCaller } from "./internal/sqs-client.ts";

export type { PredefinedQueue } from "./internal/queue-directory.ts";

export interface SqsTransportOptions extends DeliveryLimitOptions {
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
   * Seconds a received message stays invisible to other consumers. The transport extends it
   * while the message is outstanding (every third of it), so this bounds how long the messages
   * of a crashed worker wait before another worker gets them, not how long a task may run. A
   * process whose event loop is blocked for longer than this cannot extend it: raise it for such
   * tasks. Given, it is also the `VisibilityTimeout` of the queues the transport creates; by
   * default those get kombu's 1800 s, for Python workers that share them and do not extend.
   * @default 9 (a dead worker's messages are back within 10 s)
   */
  visibilityTimeout?: number;
  /** Long polling: seconds a receive waits for messages, 1 to 20. @default 10 (kombu's) */
  waitTime?: number;
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
   * Seconds a publish waits for others to the same queue, to send them together with
   * SendMessageBatch. 0 batches the publishes made in the same turn of the event loop
   * (`Promise.all` over many `delay()` calls).
   * @default 0
   */
  sendBatchWindow?: number;
  /** Seconds an ack waits for others on the same queue, to delete them together. @default 0.005 */
  ackBatchWindow?: number;
  /**
   * The longest `DelaySeconds` used, in seconds. SQS allows 900 (15 minutes); a later
   * `availableAt` is reached in hops of this length. Lower it only to test long delays quickly.
   * @default 900
   */
  maxDelay?: number;
  /** Where errors the transport recovers from are reported. @default silentLogger */
  logger?: Logger;
}

/** The options checked, with their defaults; seconds as given. */
function resolveOptions(options: SqsTransportOptions) {
  const seconds = (name: string, value: number | undefined, fallback: number, max: number) =>
    durationOption(PKG, name, value, fallback, { max, integer: true });
  if (options.endpoint !== undefined && !/^https?:\/\/[^/]/.test(options.endpoint)) {
    throw configError(
      `endpoint must be an http(s) URL such as http://127.0.0.1:4566, got ${JSON.stringify(options.endpoint)}`,
    );
  }
  const region =
    options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  return {
    region,
    visibilityTimeout: seconds(
      "visibilityTimeout",
      options.visibilityTimeout,
      9,
      MAX_VISIBILITY_SECONDS,
    ),
    waitTime: seconds("waitTime", options.waitTime, 10, 20),
    maxDelay: seconds("maxDelay", options.maxDelay, 900, 900),
    maxAttempts: integerOption("maxAttempts", options.maxAttempts, 5, 1, 100),
    maxReceiveCount:
      options.maxReceiveCount === undefined
        ? undefined
        : integerOption("maxReceiveCount", options.maxReceiveCount, 1, 1, 1000),
    sendBatchWindow: durationOption(PKG, "sendBatchWindow", options.sendBatchWindow, 0, {
      zero: true,
    }),
    ackBatchWindow: durationOption(PKG, "ackBatchWindow", options.ackBatchWindow, 0.005, {
      zero: true,
    }),
    logger: options.logger ?? silentLogger,
    limits: deliveryLimits(PKG, options),
    prefix: options.queueNamePrefix ?? "",
    endpointLabel: options.client
      ? undefined
      : (options.endpoint ?? `the AWS endpoint of ${region}`),
  };
}

/** Checks that the queues can be reached: each predefined URL, or the right to list queues. */
async function probe(
  caller: SqsCaller,
  directory: QueueDirectory,
  predefined: SqsTransportOptions["predefinedQueues"],
  prefix: string,
): Promise<void> {
  const call = caller.call.bind(caller);
  if (predefined) {
    // Checks each URL and the permission to use it; creates nothing.
    await Promise.all(
      Object.keys(predefined).map(async (queue) => {
        const info = await directory.resolve(queue);
        await call(on(info, "GetQueueAttributes"), (c) =>
          c.send(
            new GetQueueAttributesCommand({ QueueUrl: info.url, AttributeNames: ["QueueArn"] }),
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
}

/** The SDK client, built on first use unless given, and the one caller of it. */
function createClientHolder(options: SqsTransportOptions, o: ReturnType<typeof resolveOptions>) {
  let client: SQSClient | undefined = options.client;
  let clientClosed = false;
  const forceAbort = new AbortController();
  const settings = { ...o, endpoint: options.endpoint, credentials: options.credentials };
  const caller = createCaller({
    client: () => (client ??= buildClient(settings)),
    endpointLabel: o.endpointLabel,
    closed: () => clientClosed,
    forced: () => forceAbort.signal.aborted,
    closedError,
  });
  return {
    caller,
    forceAbort,
    /** No more calls; a client we built is destroyed, one given stays open. */
    destroy(): void {
      clientClosed = true;
      if (!options.client) client?.destroy();
    },
  };
}

/** What the consuming half is built from. */
interface ConsumerParts {
  o: ReturnType<typeof resolveOptions>;
  caller: SqsCaller;
  directory: QueueDirectory;
  receipts: ReturnType<typeof createReceipts>;
  forceAbort: AbortController;
}

/** The consuming half: one long-polling lane per queue on the kit, and dead letters. */
function createSqsConsumer({ o, caller, directory, receipts, forceAbort }: ConsumerParts) {
  const letters = createDeadLetters({
    caller,
    directory,
    remove: receipts.remove,
    handBack: receipts.handBack,
  });
  // Filled in below: the pollers track postponements as work a graceful close waits for.
  let track = <T>(work: Promise<T>): Promise<T> => work;
  const pollers = createPollers({
    caller,
    directory,
    logger: o.logger,
    visibilityTimeout: o.visibilityTimeout,
    waitTime: o.waitTime,
    maxDelay: o.maxDelay,
    remove: receipts.remove,
    forceSignal: forceAbort.signal,
    track: (work) => track(work),
  });
  const primitives: DriverPrimitives<Lease> = {
    open: (queues) => queues.map((queue) => pollers.open(queue)),
    ack: ({ info, message }) => receipts.remove(info, message.ReceiptHandle),
    requeue: (lease) => receipts.requeue(lease),
    // Off: forgotten, as an acknowledgement does (the worker logged the reason).
    deadLetter: (lease, reason) =>
      o.limits.deadLetters
        ? letters.deadLetter(lease, reason)
        : receipts.remove(lease.info, lease.message.ReceiptHandle),
    extendLeases: (leases) => receipts.extend(leases, o.visibilityTimeout),
    handBack: async (leases) => {
      await Promise.all(groupByQueue(leases).map((g) => receipts.handBack(g.info, g.receipts)));
    },
  };
  const kit = createConsumerKit({
    pkg: PKG,
    what: "SQS transport",
    primitives,
    logger: o.logger,
    maxMessageBytes: o.limits.maxMessageBytes,
    visibilityTimeout: o.visibilityTimeout,
    // A receive waits by itself (long polling): take again at once.
    pollInterval: 0,
    maxBatch: MAX_BATCH_ENTRIES,
    backoff: { initial: 0.5, max: 30 },
    // Receives under way end within their long poll (and the SDK's slack).
    closeTimeout: o.waitTime + 30,
  });
  track = kit.track;
  return { kit, letters };
}

/** Purges a queue (SQS allows one purge a minute); returns about how many it held. */
async function purgeQueue(caller: SqsCaller, directory: QueueDirectory, queue: string) {
  const call = caller.call.bind(caller);
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
}

/**
 * An Amazon SQS broker, compatible with kombu's SQS transport: the same queue names, the same
 * base64 JSON envelope in the message body. Received messages stay invisible while they are
 * outstanding (the kit extends their visibility timeout), so long tasks do not run twice.
 */
export function createSqsTransport(options: SqsTransportOptions = {}): Transport {
  const o = resolveOptions(options);
  const { logger } = o;
  const capabilities: TransportCapabilities = {
    delayedDelivery: "native",
    priority: false,
    deadLetter: o.limits.deadLetters !== undefined,
    redelivery: "after-lease",
    // Visible again after the timeout (whole seconds); a long poll under way returns it at once.
    redeliveryWindow: o.visibilityTimeout + 1,
    reportsConsuming: true,
  };
  const sdk = createClientHolder(options, o);
  const { caller, forceAbort } = sdk;
  let closing: Promise<void> | undefined;
  let connecting: Promise<void> | undefined;
  const directory = createQueueDirectory({
    caller,
    prefix: o.prefix,
    predefined: options.predefinedQueues,
    // Queues that Python workers may share keep kombu's default unless one was given.
    visibilityTimeout: options.visibilityTimeout === undefined ? 1800 : o.visibilityTimeout,
    createAttributes: options.createAttributes ?? {},
    maxReceiveCount: o.maxReceiveCount,
    deadLetterRetention: o.limits.deadLetters?.maxAge,
  });
  const sender = createSender({
    caller,
    directory,
    batchWindow: o.sendBatchWindow,
    maxDelay: o.maxDelay,
    base64: options.base64Encoding ?? true,
    messageGroupId: options.messageGroupId,
  });
  const receipts = createReceipts({ caller, logger, ackBatchWindow: o.ackBatchWindow });
  const { kit, letters } = createSqsConsumer({ o, caller, directory, receipts, forceAbort });
  const transport: Transport = {
    name: "sqs",
    capabilities,
    async connect() {
      kit.ensureOpen();
      connecting ??= probe(caller, directory, options.predefinedQueues, o.prefix);
      try {
        await connecting;
      } catch (error) {
        connecting = undefined;
        throw error;
      }
    },
    close({ force = false } = {}) {
      closing ??= (async () => {
        if (force) {
          // As after a crash: nothing flushed or handed back; the messages come back when their
          // visibility timeout runs out.
          forceAbort.abort();
          sender.batcher.cancel(closedError());
          receipts.deleter.cancel(closedError());
        } else {
          sender.batcher.flush();
          receipts.deleter.flush();
        }
        // Graceful: sends, acks and postponements finish; receives under way finish and hand
        // back what they got; then the outstanding deliveries go back for other consumers.
        await kit.close({ force });
        sdk.destroy();
      })();
      return closing;
    },
    async publish(message: WireMessage, publishOptions) {
      kit.ensureOpen();
      await kit.track(sender.publish(message, publishOptions));
    },
    async publishBatch(batch) {
      kit.ensureOpen();
      await kit.track(sender.publishBatch(batch));
    },
    consume: kit.consume,
    async purge(queue) {
      kit.ensureOpen();
      return purgeQueue(caller, directory, queue);
    },
  };
  return withDeadLetters(transport, kit.ensureOpen, o.limits.deadLetters && letters);
}
