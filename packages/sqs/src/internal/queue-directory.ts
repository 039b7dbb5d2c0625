import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
} from "@aws-sdk/client-sqs";
import type { SqsCaller } from "./client.ts";
import { configError, isQueueMissing } from "./errors.ts";
import {
  deadLetterQueueName,
  entityName,
  isFifoName,
  siblingQueueUrl,
  sqsQueueName,
} from "./queue-names.ts";

/** A queue the transport uses, as celery-ts and as SQS name it. */
export interface QueueInfo {
  /** The name celery-ts uses (a routing key, a worker's `-Q`). */
  name: string;
  /** The name on SQS: prefixed and translated as kombu does. */
  sqsName: string;
  url: string;
  fifo: boolean;
  /** Listed in `predefinedQueues`: never created or looked up by name. */
  predefined: boolean;
}

/** A queue that exists already, given by URL: `predefinedQueues` entries. */
export interface PredefinedQueue {
  /** The queue's URL, e.g. `https://sqs.us-east-1.amazonaws.com/123456789012/celery`. */
  url: string;
  /**
   * Where `reject({ requeue: false })` sends messages. Without it, the target of the queue's
   * redrive policy (read with GetQueueAttributes), if it has one.
   * @default the redrive policy's dead-letter queue
   */
  deadLetterUrl?: string;
}

export interface QueueDirectoryOptions {
  caller: SqsCaller;
  prefix: string;
  predefined: Record<string, string | PredefinedQueue> | undefined;
  /** Seconds: the `VisibilityTimeout` of the queues it creates. */
  visibilityTimeout: number;
  createAttributes: Record<string, string>;
  maxReceiveCount: number | undefined;
  /** Seconds: the `MessageRetentionPeriod` of the dead-letter queues it creates (60 s to 14 days). */
  deadLetterRetention?: number | undefined;
}

export interface QueueDirectory {
  /** The queue, created on first use unless queues are predefined. */
  resolve(queue: string): Promise<QueueInfo>;
  /** The queue if it exists; never creates it. */
  find(queue: string): Promise<QueueInfo | undefined>;
  /** Drops a cached URL (the queue was deleted behind our back). */
  forget(queue: string): void;
  /**
   * The dead-letter queue of a queue: the predefined `deadLetterUrl`, else its redrive policy's
   * target, else (for queues the transport manages) `<name>-dlq`, created when `create`.
   */
  deadLetterUrl(info: QueueInfo, create: boolean): Promise<string | undefined>;
}

/** SQS's bounds of `MessageRetentionPeriod`: 60 s to 14 days (the default, long enough to notice). */
const MIN_RETENTION_SECONDS = 60;
const MAX_RETENTION_SECONDS = 1_209_600;

/** kombu's check: a FIFO queue's name and URL both end in `.fifo`, or neither does. */
function normalizePredefined(
  predefined: Record<string, string | PredefinedQueue>,
): Map<string, PredefinedQueue> {
  const queues = new Map<string, PredefinedQueue>();
  for (const [name, value] of Object.entries(predefined)) {
    const entry = typeof value === "string" ? { url: value } : value;
    if (typeof entry.url !== "string" || !/^https?:\/\//.test(entry.url)) {
      throw configError(
        `predefinedQueues[${JSON.stringify(name)}] must be the queue's http(s) URL, got ` +
          JSON.stringify(entry.url),
      );
    }
    if (isFifoName(name) !== entry.url.replace(/\/+$/, "").endsWith(".fifo")) {
      throw configError(
        `predefinedQueues[${JSON.stringify(name)}]: a FIFO queue's name and URL must both end ` +
          `in .fifo, and a standard queue's neither (URL ${entry.url})`,
      );
    }
    queues.set(name, entry);
  }
  return queues;
}

/** The URL of the queue named `sqsName`, or undefined when there is none. */
async function lookUp(
  caller: SqsCaller,
  queue: string,
  sqsName: string,
): Promise<string | undefined> {
  try {
    const { QueueUrl } = await caller.call({ action: "GetQueueUrl", queue, sqsName }, (client) =>
      client.send(new GetQueueUrlCommand({ QueueName: sqsName })),
    );
    return QueueUrl;
  } catch (error) {
    if (isQueueMissing(error)) return undefined;
    throw error;
  }
}

/** Creates the queue (or takes the one another process created meanwhile); its URL. */
async function create(
  caller: SqsCaller,
  queue: string,
  sqsName: string,
  attributes: Record<string, string>,
): Promise<string> {
  try {
    const { QueueUrl } = await caller.call({ action: "CreateQueue", queue, sqsName }, (client) =>
      client.send(new CreateQueueCommand({ QueueName: sqsName, Attributes: attributes })),
    );
    if (QueueUrl) return QueueUrl;
  } catch (error) {
    // Created meanwhile by another process, with other attributes: use it as it is.
    const name = (error as { cause?: { name?: unknown } }).cause?.name;
    if (name !== "QueueNameExists" && name !== "QueueAlreadyExists") throw error;
  }
  const url = await lookUp(caller, queue, sqsName);
  if (!url) throw configError(`SQS created the queue ${JSON.stringify(sqsName)} but has no URL`);
  return url;
}

async function queueArn(caller: SqsCaller, queue: string, url: string): Promise<string> {
  const { Attributes } = await caller.call({ action: "GetQueueAttributes", queue }, (client) =>
    client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] })),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw configError(`SQS did not return the ARN of the queue at ${url}`);
  return arn;
}

/** The dead-letter queue a queue's redrive policy names, if it has one. */
async function redriveTarget(caller: SqsCaller, info: QueueInfo): Promise<string | undefined> {
  const { Attributes } = await caller.call(
    { action: "GetQueueAttributes", queue: info.name, sqsName: info.sqsName },
    (client) =>
      client.send(
        new GetQueueAttributesCommand({
          QueueUrl: info.url,
          AttributeNames: ["RedrivePolicy" as QueueAttributeName],
        }),
      ),
  );
  const policy = Attributes?.RedrivePolicy;
  if (!policy) return undefined;
  try {
    const arn = (JSON.parse(policy) as { deadLetterTargetArn?: unknown }).deadLetterTargetArn;
    return typeof arn === "string" ? siblingQueueUrl(info.url, arn) : undefined;
  } catch {
    return undefined;
  }
}

/** The attributes of a dead-letter queue the transport creates: the user's, but no redrive. */
function deadLetterAttributes(options: QueueDirectoryOptions, fifo: boolean) {
  const { RedrivePolicy: _redrive, ...attributes } = options.createAttributes;
  return {
    MessageRetentionPeriod: String(
      Math.round(
        Math.max(
          MIN_RETENTION_SECONDS,
          Math.min(MAX_RETENTION_SECONDS, options.deadLetterRetention ?? MAX_RETENTION_SECONDS),
        ),
      ),
    ),
    ...attributes,
    ...(fifo && { FifoQueue: "true" }),
  };
}

/** The queues of `predefinedQueues`: nothing is looked up by name or created. */
function predefinedQueues(
  predefined: Map<string, PredefinedQueue>,
  prefix: string,
): {
  entry(queue: string): PredefinedQueue | undefined;
  info(queue: string): QueueInfo;
} {
  /** kombu keys predefined queues by SQS name; celery-ts users may key them by queue name. */
  const entry = (queue: string): PredefinedQueue | undefined =>
    predefined.get(queue) ?? predefined.get(entityName(prefix + queue));
  return {
    entry,
    info(queue) {
      const found = entry(queue);
      if (!found) {
        const known = [...predefined.keys()].map((name) => JSON.stringify(name)).join(", ");
        throw configError(
          `the queue ${JSON.stringify(queue)} is not in predefinedQueues (${known}); add its URL ` +
            "there (the transport creates no queues when predefinedQueues is set)",
        );
      }
      const sqsName = found.url.replace(/\/+$/, "").split("/").pop() ?? queue;
      return { name: queue, sqsName, url: found.url, fifo: isFifoName(sqsName), predefined: true };
    },
  };
}

export function createQueueDirectory(options: QueueDirectoryOptions): QueueDirectory {
  const { caller, prefix } = options;
  const predefined =
    options.predefined && predefinedQueues(normalizePredefined(options.predefined), prefix);
  const cache = new Map<string, Promise<QueueInfo>>();
  const deadLetterCache = new Map<string, string>();

  /** The attributes kombu creates a queue with, ours, then the user's creation attributes. */
  const queueAttributes = async (
    queue: string,
    sqsName: string,
    fifo: boolean,
  ): Promise<Record<string, string>> => {
    const attributes: Record<string, string> = {
      VisibilityTimeout: String(options.visibilityTimeout),
      ...(fifo && { FifoQueue: "true" }),
      ...options.createAttributes,
    };
    if (options.maxReceiveCount !== undefined && attributes.RedrivePolicy === undefined) {
      const dlqName = deadLetterQueueName(sqsName);
      const dlqUrl = await create(caller, queue, dlqName, deadLetterAttributes(options, fifo));
      deadLetterCache.set(queue, dlqUrl);
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: await queueArn(caller, queue, dlqUrl),
        maxReceiveCount: options.maxReceiveCount,
      });
    }
    return attributes;
  };

  return {
    async resolve(queue) {
      if (predefined) return predefined.info(queue);
      let found = cache.get(queue);
      if (!found) {
        found = (async () => {
          const sqsName = sqsQueueName(queue, prefix);
          const fifo = isFifoName(sqsName);
          const url =
            (await lookUp(caller, queue, sqsName)) ??
            (await create(caller, queue, sqsName, await queueAttributes(queue, sqsName, fifo)));
          return { name: queue, sqsName, url, fifo, predefined: false };
        })();
        cache.set(queue, found);
        // A failure is not cached: the next call tries again.
        found.catch(() => cache.delete(queue));
      }
      return found;
    },
    async find(queue) {
      if (predefined) return predefined.info(queue);
      const cached = cache.get(queue);
      if (cached) return cached;
      const sqsName = sqsQueueName(queue, prefix);
      const url = await lookUp(caller, queue, sqsName);
      return url
        ? { name: queue, sqsName, url, fifo: isFifoName(sqsName), predefined: false }
        : undefined;
    },
    forget(queue) {
      cache.delete(queue);
      deadLetterCache.delete(queue);
    },
    async deadLetterUrl(info, createIfMissing) {
      const cached = deadLetterCache.get(info.name);
      if (cached) return cached;
      const entry = info.predefined ? predefined?.entry(info.name) : undefined;
      let url = entry?.deadLetterUrl ?? (await redriveTarget(caller, info));
      if (!url && !info.predefined) {
        const dlqName = deadLetterQueueName(info.sqsName);
        url =
          (await lookUp(caller, info.name, dlqName)) ??
          (createIfMissing
            ? await create(caller, info.name, dlqName, deadLetterAttributes(options, info.fifo))
            : undefined);
      }
      if (url) deadLetterCache.set(info.name, url);
      return url;
    },
  };
}
