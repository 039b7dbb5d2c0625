import { configError } from "./errors.ts";

const FIFO_SUFFIX = ".fifo";
/** Python's `string.punctuation`, which kombu's translation table is built from. */
const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const SQS_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const MAX_LENGTH = 80;

function translate(name: string): string {
  let out = "";
  for (const char of name) {
    if (char === ".") out += "-";
    else if (char !== "-" && char !== "_" && PUNCTUATION.includes(char)) out += "_";
    else out += char;
  }
  return out;
}

export function isFifoName(name: string): boolean {
  return name.endsWith(FIFO_SUFFIX);
}

/**
 * kombu's `Channel.entity_name`: `.` becomes `-`, other ASCII punctuation but `-` and `_` becomes
 * `_`, and a `.fifo` suffix is kept. Other characters are kept as they are (SQS refuses them).
 */
export function entityName(name: string): string {
  return isFifoName(name)
    ? translate(name.slice(0, -FIFO_SUFFIX.length)) + FIFO_SUFFIX
    : translate(name);
}

function checkSqsName(sqsName: string, what: string): string {
  const base = isFifoName(sqsName) ? sqsName.slice(0, -FIFO_SUFFIX.length) : sqsName;
  if (!SQS_NAME.test(base) || sqsName.length > MAX_LENGTH) {
    throw configError(
      `${what} becomes the SQS queue name ${JSON.stringify(sqsName)}, which SQS does not accept: ` +
        "SQS names are 1 to 80 letters, digits, hyphens and underscores (a FIFO queue's ending " +
        "in .fifo, within the 80); rename the queue or shorten queueNamePrefix",
    );
  }
  return sqsName;
}

/** The SQS name of a celery-ts queue, as kombu's `canonical_queue_name`: prefix, then translate. */
export function sqsQueueName(queue: string, prefix: string): string {
  const what =
    prefix === ""
      ? `the queue ${JSON.stringify(queue)}`
      : `the queue ${JSON.stringify(queue)} with the prefix ${JSON.stringify(prefix)}`;
  return checkSqsName(entityName(prefix + queue), what);
}

/** The dead-letter queue the transport creates for a queue: `<name>-dlq`, or `<name>-dlq.fifo`. */
export function deadLetterQueueName(sqsName: string): string {
  const name = isFifoName(sqsName)
    ? `${sqsName.slice(0, -FIFO_SUFFIX.length)}-dlq${FIFO_SUFFIX}`
    : `${sqsName}-dlq`;
  return checkSqsName(name, `the dead-letter queue of the SQS queue ${JSON.stringify(sqsName)}`);
}

/**
 * The URL of a queue named by ARN, next to a queue whose URL we know: a redrive policy names its
 * dead-letter queue by ARN, and it must live in the same region (and, here, account) as its source.
 */
export function siblingQueueUrl(knownUrl: string, arn: string): string | undefined {
  const match = /^arn:[^:]+:sqs:[^:]*:([^:]+):([^:]+)$/.exec(arn);
  const slash = knownUrl.replace(/\/+$/, "").lastIndexOf("/");
  const accountSlash = knownUrl.lastIndexOf("/", slash - 1);
  if (!match || slash < 0 || accountSlash < 0) return undefined;
  return `${knownUrl.slice(0, accountSlash)}/${match[1]}/${match[2]}`;
}
