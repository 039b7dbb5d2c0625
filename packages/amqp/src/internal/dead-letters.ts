/**
 * Dead letters on RabbitMQ: the consumer publishes a copy of a rejected message, with its reason,
 * to the dead-letter exchange, which routes it by the queue's name to `<queue>.dead`; then it
 * acknowledges the original. Nothing is asked of the queue's own declaration, so Python Celery
 * declares and consumes the same queues unchanged. RabbitMQ bounds each dead-letter queue
 * (`x-max-length`, `x-max-length-bytes`, `x-message-ttl`, dropping the oldest). Reading is a
 * peek (basic.get without ack, then closing the channel, which puts every one back in its place);
 * replay and purge acknowledge the ones picked.
 */
import { isCeleryTsError, type DeadLetter, type DeadLetterSelection } from "@celery-ts/core";
import { deadLetterCountLimit, notKeptReason, type DeadLetterLimits } from "@celery-ts/core/driver";
import type { Channel, GetMessage, Message, Options } from "amqplib";
import { mapAmqpError } from "./errors.ts";
import { decodeFieldTable, encodeFieldTable } from "./field-table.ts";
import { rawText } from "./message.ts";
import type { Session } from "./session.ts";

/** Headers a dead letter gets: why, from which queue, when (epoch ms). */
const DEAD_REASON = "x-celery-ts-reason";
const DEAD_QUEUE = "x-celery-ts-queue";
const DEAD_AT = "x-celery-ts-rejected-at";

/** Headers RabbitMQ adds when it dead-letters a message itself (`declareArguments`). */
const RABBIT_DEATH_HEADERS = [
  "x-death",
  "x-first-death-exchange",
  "x-first-death-queue",
  "x-first-death-reason",
  "x-last-death-exchange",
  "x-last-death-queue",
  "x-last-death-reason",
];

/** The dead-letter queue's declaration arguments: RabbitMQ enforces the bounds. */
export function deadQueueArguments(limits: DeadLetterLimits): Record<string, unknown> {
  return {
    "x-max-length": limits.maxCount,
    "x-max-length-bytes": limits.maxBytes,
    // RabbitMQ's TTL is a 32-bit count of milliseconds.
    "x-message-ttl": Math.min(2 ** 32 - 1, Math.round(limits.maxAge * 1000)),
  };
}

/** The text of a stored message: UTF-8 when it is, otherwise one character per byte. */
function storedText(message: Message): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(message.content);
  } catch {
    return rawText(message.content);
  }
}

/** A message of a dead-letter queue as a `DeadLetter`: ours (reason headers) or RabbitMQ's (x-death). */
function deadLetterOf(message: GetMessage, queue: string): DeadLetter {
  const headers = decodeFieldTable(message.properties.headers);
  const death = Array.isArray(headers["x-death"])
    ? (headers["x-death"][0] as Record<string, unknown> | undefined)
    : undefined;
  const at = headers[DEAD_AT] ?? death?.time;
  const reason =
    typeof headers[DEAD_REASON] === "string"
      ? headers[DEAD_REASON]
      : typeof death?.reason === "string"
        ? death.reason
        : "rejected";
  const letter: DeadLetter = {
    queue: typeof headers[DEAD_QUEUE] === "string" ? headers[DEAD_QUEUE] : queue,
    raw: storedText(message),
    reason,
    rejectedAt: at instanceof Date ? at.getTime() : typeof at === "number" ? at : 0,
  };
  const { id, task } = headers;
  if (typeof task === "string" && task !== "") letter.taskName = task;
  return typeof id === "string" && id !== "" ? { ...letter, taskId: id } : letter;
}

/** A message's properties again, to publish a copy of it (a dead letter, a replay). */
function copyProperties(message: Message, headers: Record<string, unknown>): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = { headers: encodeFieldTable(headers), deliveryMode: 2 };
  if (typeof p.contentType === "string") options.contentType = p.contentType;
  if (typeof p.contentEncoding === "string") options.contentEncoding = p.contentEncoding;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.priority !== undefined) options.priority = p.priority;
  if (p.messageId !== undefined) options.messageId = p.messageId;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp;
  if (p.type !== undefined) options.type = p.type;
  if (p.appId !== undefined) options.appId = p.appId;
  return options;
}

/** The message's headers without the ones a dead-lettering added (ours or RabbitMQ's). */
function replayHeaders(message: Message): Record<string, unknown> {
  const headers = decodeFieldTable(message.properties.headers);
  for (const name of [DEAD_REASON, DEAD_QUEUE, DEAD_AT, ...RABBIT_DEATH_HEADERS]) {
    delete headers[name];
  }
  return headers;
}

/** Where dead letters go: the exchange, the queue of each queue's dead letters, their bounds. */
export interface DeadLetterTarget {
  exchange: string;
  limits: DeadLetterLimits;
  /** The dead-letter queue of `queue`. */
  queueOf(queue: string): string;
  /** Declares the dead-letter queue of `queue` (once per session). */
  declare(session: Session, queue: string): Promise<void>;
}

/**
 * Publishes a copy of a rejected `message` of `queue`, with its reason, to the dead letters. A
 * message alone over the byte bound (which RabbitMQ would drop at once) is kept without its body:
 * its headers (task id) and the reason, which says so. A dead-letter queue deleted since it was
 * declared (RabbitMQ returns the copy, or says it is not found) is declared again, once, at once.
 */
export async function keepDeadLetter(
  target: DeadLetterTarget,
  publishTimeoutMs: number,
  request: { session: Session; queue: string; message: Message; reason: string },
): Promise<void> {
  try {
    await publishDeadLetter(target, publishTimeoutMs, request);
  } catch (error) {
    request.session.forget(JSON.stringify(request.queue));
    if (isCeleryTsError(error) && error.code === "CONFIG") throw error;
    await publishDeadLetter(target, publishTimeoutMs, request);
  }
}

async function publishDeadLetter(
  target: DeadLetterTarget,
  publishTimeoutMs: number,
  request: { session: Session; queue: string; message: Message; reason: string },
): Promise<void> {
  const { session, queue, message, reason } = request;
  await target.declare(session, queue);
  const bytes = message.content.length;
  const kept = bytes <= target.limits.maxBytes;
  const headers = {
    ...decodeFieldTable(message.properties.headers),
    [DEAD_REASON]: kept ? reason : notKeptReason(reason, bytes, target.limits.maxBytes),
    [DEAD_QUEUE]: queue,
    [DEAD_AT]: Date.now(),
  };
  await session.publish({
    exchange: target.exchange,
    routingKey: queue,
    content: kept ? message.content : Buffer.alloc(0),
    options: copyProperties(message, headers),
    what: `dead-letter a message of the queue "${queue}" to the exchange "${target.exchange}"`,
    timeoutMs: publishTimeoutMs,
    mandatory: true,
  });
}

/** What a sweep does with one dead letter. */
type Visit = "take" | "skip" | "stop";

/**
 * Goes through the dead letters of `queue` in order, on a channel of its own: those `visit` takes
 * are acknowledged (gone) once `onTaken` resolved; the others go back in their place when the
 * channel closes. Returns how many were taken. It visits only the letters there when it began:
 * a replayed task that fails again is dead-lettered behind them, and is left for the next sweep
 * (going on until the queue is empty would replay it again, for ever).
 */
async function sweep(
  target: DeadLetterTarget,
  session: Session,
  queue: string,
  visit: (message: GetMessage) => Visit,
  onTaken: (message: GetMessage) => Promise<void> = async () => undefined,
): Promise<number> {
  await target.declare(session, queue);
  const deadQueue = target.queueOf(queue);
  const channel: Channel = await session.channel();
  let taken = 0;
  try {
    const { messageCount } = await channel.checkQueue(deadQueue);
    for (let seen = 0; seen < messageCount; seen++) {
      const message = await channel.get(deadQueue, { noAck: false });
      if (message === false) break;
      const action = visit(message);
      if (action === "stop") break;
      if (action === "skip") continue;
      await onTaken(message);
      channel.ack(message);
      taken++;
    }
    // A request after the acks: its reply means RabbitMQ processed them before the close.
    if (taken > 0) await channel.checkQueue(deadQueue);
  } finally {
    await channel.close().catch(() => undefined);
  }
  return taken;
}

const countLimit = (limit: number | undefined): number => deadLetterCountLimit(limit) ?? Infinity;

/** The dead letters of `queue`, oldest first, at most `limit`: a peek that removes nothing. */
export async function readDeadLetters(
  target: DeadLetterTarget,
  session: Session,
  queue: string,
  limit: number | undefined,
): Promise<DeadLetter[]> {
  const max = countLimit(limit);
  const letters: DeadLetter[] = [];
  try {
    await sweep(target, session, queue, (message) => {
      if (letters.length >= max) return "stop";
      letters.push(deadLetterOf(message, queue));
      return "skip";
    });
  } catch (error) {
    throw mapAmqpError(error, `read the dead letters of the queue "${queue}"`);
  }
  return letters;
}

/** A visitor that picks what `selection` asks for (and, for a replay, only letters with a body). */
function picker(
  queue: string,
  { taskId, limit }: DeadLetterSelection,
  replay: boolean,
): (message: GetMessage) => Visit {
  const max = countLimit(limit);
  let picked = 0;
  return (message) => {
    if (picked >= max) return "stop";
    if (taskId !== undefined && deadLetterOf(message, queue).taskId !== taskId) return "skip";
    if (replay && message.content.length === 0) return "skip";
    picked++;
    return "take";
  };
}

/**
 * Publishes the picked dead letters of `queue` to `target` (the queue's own publish target), as
 * they were before they were rejected, and removes them. Returns how many.
 */
export async function replayDeadLetters(
  dead: DeadLetterTarget,
  request: {
    session: Session;
    queue: string;
    selection: DeadLetterSelection;
    target: { exchange: string; routingKey: string };
    publishTimeoutMs: number;
  },
): Promise<number> {
  const { session, queue, selection, target, publishTimeoutMs } = request;
  const what = `replay a dead letter to the queue "${queue}"`;
  try {
    return await sweep(dead, session, queue, picker(queue, selection, true), (message) =>
      session.publish({
        ...target,
        content: message.content,
        options: copyProperties(message, replayHeaders(message)),
        what,
        timeoutMs: publishTimeoutMs,
        mandatory: true,
      }),
    );
  } catch (error) {
    throw mapAmqpError(error, what);
  }
}

/** Deletes the picked dead letters of `queue` for good. Returns how many. */
export async function purgeDeadLetters(
  dead: DeadLetterTarget,
  session: Session,
  queue: string,
  selection: DeadLetterSelection,
): Promise<number> {
  try {
    return await sweep(dead, session, queue, picker(queue, selection, false));
  } catch (error) {
    throw mapAmqpError(error, `purge the dead letters of the queue "${queue}"`);
  }
}
