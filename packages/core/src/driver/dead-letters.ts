// Dead letters and the message size limit, shared by every driver: the options, their URL
// parameters, their defaults and checks, reading a task id out of a stored message, and a
// transport's dead-letter methods.
import type { DeadLetter, DeadLetterSelection, Transport } from "../transport.ts";
import { configError } from "./errors.ts";

/** How many dead letters a transport keeps per queue; the oldest go first beyond any bound. */
export interface DeadLetterLimits {
  /** The most dead letters per queue. @default 10000 */
  maxCount: number;
  /** The most bytes of dead letters per queue (their stored messages). @default 104857600 (100 MiB) */
  maxBytes: number;
  /** Seconds a dead letter is kept. @default 1209600 (14 days) */
  maxAge: number;
}

export const DEFAULT_DEAD_LETTER_LIMITS: Readonly<DeadLetterLimits> = Object.freeze({
  maxCount: 10_000,
  maxBytes: 100 * 1024 * 1024,
  maxAge: 14 * 24 * 3600,
});

/**
 * The largest stored message (the whole envelope) a consumer takes, in bytes: a larger one is
 * dead-lettered with the reason, unread where the broker shows the size first. 16 MiB holds the
 * worker's 10 MiB body limit after base64.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * A dead-letter selection's `limit` as a count of letters: a whole number, 0 or more; undefined
 * when there is no limit (undefined, Infinity or not a number). Each driver maps undefined to its
 * own "all" (SQL NULL, SQLite's -1...).
 */
export function deadLetterCountLimit(limit: number | undefined): number | undefined {
  return limit === undefined || !Number.isFinite(limit)
    ? undefined
    : Math.max(0, Math.floor(limit));
}

/** The options every driver takes for dead letters and message size (and their URL parameters). */
export interface DeliveryLimitOptions {
  /**
   * Keep rejected messages with their reason (`true`, or bounds other than the defaults), or
   * drop them (`false`, logged by the worker only). URL: `?dead_letters=off`,
   * `?dead_letter_max_count=`, `?dead_letter_max_bytes=`, `?dead_letter_max_age=` (seconds).
   * @default true, with DEFAULT_DEAD_LETTER_LIMITS
   */
  deadLetters?: boolean | Partial<DeadLetterLimits>;
  /**
   * A stored message larger than this many bytes is dead-lettered (reason: its size) instead of
   * delivered. URL: `?max_message_bytes=`. @default DEFAULT_MAX_MESSAGE_BYTES (16 MiB)
   */
  maxMessageBytes?: number;
}

/** The checked options: `deadLetters` undefined when turned off. */
export interface DeliveryLimits {
  deadLetters: DeadLetterLimits | undefined;
  maxMessageBytes: number;
}

function positiveInteger(pkg: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw configError(pkg, `${name} must be a whole number of 1 or more, got ${String(value)}`);
  }
  return value;
}

/** Checks the options and fills in the defaults; a bad value is a `CONFIG` error naming it. */
export function deliveryLimits(pkg: string, options: DeliveryLimitOptions = {}): DeliveryLimits {
  const maxMessageBytes = positiveInteger(
    pkg,
    "maxMessageBytes",
    options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
  );
  const given = options.deadLetters ?? true;
  if (given === false) return { deadLetters: undefined, maxMessageBytes };
  const bounds = { ...DEFAULT_DEAD_LETTER_LIMITS, ...(given === true ? {} : given) };
  const { maxAge } = bounds;
  if (typeof maxAge !== "number" || !Number.isFinite(maxAge) || maxAge <= 0) {
    throw configError(
      pkg,
      `deadLetters.maxAge must be a positive number of seconds, got ${maxAge}`,
    );
  }
  return {
    deadLetters: {
      maxCount: positiveInteger(pkg, "deadLetters.maxCount", bounds.maxCount),
      maxBytes: positiveInteger(pkg, "deadLetters.maxBytes", bounds.maxBytes),
      maxAge,
    },
    maxMessageBytes,
  };
}

const URL_PARAMETERS = [
  "dead_letters",
  "dead_letter_max_count",
  "dead_letter_max_bytes",
  "dead_letter_max_age",
  "max_message_bytes",
] as const;

/**
 * Takes the dead-letter and message-size parameters out of a broker URL, for the driver to parse
 * the rest: `?dead_letters=off|on`, `?dead_letter_max_count=`, `?dead_letter_max_bytes=`,
 * `?dead_letter_max_age=` (seconds), `?max_message_bytes=`. A bad value is a `CONFIG` error.
 */
export function takeDeliveryLimitParameters(
  pkg: string,
  url: string,
): { url: string; options: DeliveryLimitOptions } {
  const at = url.indexOf("?");
  if (at < 0) return { url, options: {} };
  const query = new URLSearchParams(url.slice(at + 1));
  const found = new Map<string, string>();
  for (const name of URL_PARAMETERS) {
    const value = query.get(name);
    if (value !== null) found.set(name, value);
    query.delete(name);
  }
  if (found.size === 0) return { url, options: {} };
  const rest = query.toString();
  const stripped = url.slice(0, at) + (rest === "" ? "" : `?${rest}`);
  const number = (name: string): number | undefined => {
    const value = found.get(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
      throw configError(pkg, `?${name}= takes a positive number, not "${value}"`);
    }
    return n;
  };
  const options: DeliveryLimitOptions = {};
  const maxMessageBytes = number("max_message_bytes");
  if (maxMessageBytes !== undefined) options.maxMessageBytes = maxMessageBytes;
  const switchValue = found.get("dead_letters")?.toLowerCase();
  if (
    switchValue !== undefined &&
    !["on", "off", "true", "false", "1", "0"].includes(switchValue)
  ) {
    throw configError(pkg, `?dead_letters= is on or off, not "${found.get("dead_letters")}"`);
  }
  const limits: Partial<DeadLetterLimits> = {};
  const maxCount = number("dead_letter_max_count");
  const maxBytes = number("dead_letter_max_bytes");
  const maxAge = number("dead_letter_max_age");
  if (maxCount !== undefined) limits.maxCount = maxCount;
  if (maxBytes !== undefined) limits.maxBytes = maxBytes;
  if (maxAge !== undefined) limits.maxAge = maxAge;
  if (switchValue === "off" || switchValue === "false" || switchValue === "0") {
    options.deadLetters = false;
  } else if (Object.keys(limits).length > 0) {
    options.deadLetters = limits;
  }
  return { url: stripped, options };
}

/** The reason of a message refused for its size. */
export function oversizeReason(bytes: number, limit: number): string {
  return (
    `message is ${bytes} bytes, over the ${limit}-byte limit (max_message_bytes): send large ` +
    "payloads by reference (a URL or a key) or raise the limit"
  );
}

/**
 * The UTF-8 size of a stored message when it is over `limit`, else undefined. Cheap: a string
 * is measured exactly only when its length says it may be over.
 */
export function oversize(raw: string, limit: number): number | undefined {
  if (raw.length > limit) return Buffer.byteLength(raw);
  if (raw.length * 3 <= limit) return undefined;
  const bytes = Buffer.byteLength(raw);
  return bytes > limit ? bytes : undefined;
}

/** The reason stored with a dead letter whose message alone is over the byte limit. */
export function notKeptReason(reason: string, bytes: number, maxBytes: number): string {
  return `${reason} (message not kept: ${bytes} bytes, over the dead letters' ${maxBytes}-byte limit)`;
}

const ID_IN_HEADERS = /"id"\s*:\s*"((?:[^"\\]|\\.){1,200})"/;

/**
 * The task id a stored message (a kombu envelope) names, read without decoding its body: from
 * its headers (protocol 2, any content type), or from a JSON protocol-1 body. Undefined when it
 * names none or cannot be read.
 */
export function taskIdOf(raw: string): string | undefined {
  // kombu writes the body first: the headers are found from the end, without parsing the body.
  const at = raw.lastIndexOf('"headers"');
  if (at >= 0) {
    const open = raw.indexOf("{", at);
    const match = open >= 0 ? ID_IN_HEADERS.exec(raw.slice(open, open + 65_536)) : null;
    if (match?.[1]) return JSON.parse(`"${match[1]}"`) as string;
  }
  if (raw.length > 1024 * 1024) return undefined;
  try {
    const envelope = JSON.parse(raw) as {
      body?: unknown;
      properties?: { body_encoding?: unknown };
    };
    if (typeof envelope.body !== "string") return undefined;
    const text =
      envelope.properties?.body_encoding === "base64"
        ? Buffer.from(envelope.body, "base64").toString("utf8")
        : envelope.body;
    const id = (JSON.parse(text) as { id?: unknown }).id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

const NOT_KEPT_MARK = '{"celery_ts_not_kept":true';

/**
 * What a broker that keeps a dead letter in its message's place stores for a message alone over
 * the byte bound: the task id only, in an envelope's `headers` (so `taskIdOf()` reads it).
 */
export function notKeptPayload(taskId: string | undefined): string {
  return `${NOT_KEPT_MARK},"headers":${JSON.stringify(taskId === undefined ? {} : { id: taskId })}}`;
}

/**
 * A dead letter as read back from the broker: `raw` empty for a message that was not kept, and
 * the task id read from the stored message when the broker did not keep it apart.
 */
export function storedDeadLetter(letter: {
  queue: string;
  raw: string;
  reason: string;
  rejectedAt: number;
  taskId?: string | null | undefined;
}): DeadLetter {
  const taskId = letter.taskId ?? taskIdOf(letter.raw);
  const raw = letter.raw.startsWith(NOT_KEPT_MARK) ? "" : letter.raw;
  const { queue, reason } = letter;
  const rejectedAt = Number(letter.rejectedAt);
  return taskId === undefined
    ? { queue, raw, reason, rejectedAt }
    : { queue, raw, reason, rejectedAt, taskId };
}

/**
 * When a driver whose trim costs a pass over the dead letters (SQL) trims a queue's: after 1% of
 * a bound has arrived since the last trim, or a minute, so a flood costs one pass per hundred
 * letters, not one per letter. The bounds are then exceeded by at most 1%, for at most a minute.
 */
export class TrimSchedule {
  readonly #limits: DeadLetterLimits;
  readonly #since = new Map<string, { count: number; bytes: number; at: number }>();

  constructor(limits: DeadLetterLimits) {
    this.#limits = limits;
  }

  /** Counts a new dead letter of `bytes`; true when the queue's dead letters are due a trim. */
  due(queue: string, bytes: number, now = Date.now()): boolean {
    const since = this.#since.get(queue) ?? { count: 0, bytes: 0, at: now };
    since.count++;
    since.bytes += bytes;
    const { maxCount, maxBytes } = this.#limits;
    const due =
      since.count >= Math.max(1, Math.floor(maxCount / 100)) ||
      since.bytes >= maxBytes / 100 ||
      now - since.at >= 60_000;
    this.#since.set(queue, due ? { count: 0, bytes: 0, at: now } : since);
    return due;
  }
}

/** A driver's dead letters, as `withDeadLetters()` puts them on its transport. */
export interface DeadLetterAccess {
  /** The queue's dead letters, oldest first: at most `limit`, all when it is undefined. */
  list(queue: string, limit: number | undefined): Promise<DeadLetter[]>;
  /** Puts the selected dead letters back on their queue; how many. */
  replay(queue: string, selection: DeadLetterSelection): Promise<number>;
  /** Deletes the selected dead letters; how many. */
  purge(queue: string, selection: DeadLetterSelection): Promise<number>;
}

/**
 * The transport with `deadLetters()`, `replayDeadLetters()` and `purgeDeadLetters()` over
 * `access`, each rejecting with the closed error after close (`ensureOpen` throws it); the
 * transport unchanged when dead letters are off (`access` undefined).
 */
export function withDeadLetters(
  transport: Transport,
  ensureOpen: () => void,
  access: DeadLetterAccess | undefined,
): Transport {
  if (!access) return transport;
  return {
    ...transport,
    async deadLetters(queue, { limit } = {}) {
      ensureOpen();
      return access.list(queue, limit);
    },
    async replayDeadLetters(queue, selection = {}) {
      ensureOpen();
      return access.replay(queue, selection);
    },
    async purgeDeadLetters(queue, selection = {}) {
      ensureOpen();
      return access.purge(queue, selection);
    },
  };
}

/** A transport's dead-letter methods, bound: list, replay, purge. */
export interface DeadLetterMethods {
  list: NonNullable<Transport["deadLetters"]>;
  replay: NonNullable<Transport["replayDeadLetters"]>;
  purge: NonNullable<Transport["purgeDeadLetters"]>;
}

/**
 * The dead-letter methods of a transport that keeps dead letters, or undefined where it keeps
 * none (`capabilities.deadLetter` false: a driver without them, or turned off).
 */
export function deadLetterMethods(transport: Transport): DeadLetterMethods | undefined {
  const { deadLetters, replayDeadLetters, purgeDeadLetters } = transport;
  if (!transport.capabilities.deadLetter || !deadLetters || !replayDeadLetters || !purgeDeadLetters)
    return undefined;
  return {
    list: deadLetters.bind(transport),
    replay: replayDeadLetters.bind(transport),
    purge: purgeDeadLetters.bind(transport),
  };
}
