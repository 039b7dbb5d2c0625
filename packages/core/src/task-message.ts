import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { CeleryTsError } from "./errors.ts";
import { decodeJson, encodeJson } from "./json.ts";
import { reprArgs, reprKwargs } from "./internal/py-repr.ts";

/** A signature: a task call described as data (callbacks, errbacks, chains, chords). */
export interface Signature {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  /** null for a task; "chain", "group", "chord", "chunks", "xmap", "xstarmap" for canvas types. */
  subtask_type: string | null;
  immutable: boolean;
  chord_size: number | null;
  [extra: string]: unknown;
}

/** The third element of a protocol v2 body. */
export interface Embed {
  callbacks: Signature[] | null;
  errbacks: Signature[] | null;
  /** The rest of a chain, in reverse order: the next task to run is last. */
  chain: Signature[] | null;
  chord: Signature | null;
}

/** Celery protocol v2 headers, spelled as on the wire. Unknown headers are kept. */
export interface TaskHeaders {
  lang: string;
  task: string;
  id: string;
  shadow: string | null;
  /** ISO-8601, or null: do not run before. */
  eta: string | null;
  /** ISO-8601, or null: do not run after (the task is REVOKED instead). */
  expires: string | null;
  group: string | null;
  group_index: number | null;
  retries: number;
  /** [hard, soft] in seconds: Celery's order (`[time_limit, soft_time_limit]`), despite its docs. */
  timelimit: [number | null, number | null];
  root_id: string | null;
  parent_id: string | null;
  argsrepr: string | null;
  kwargsrepr: string | null;
  origin: string | null;
  ignore_result: boolean;
  [extra: string]: unknown;
}

/** AMQP-style message properties, as Celery sets them. Transports add their own on the wire. */
export interface MessageProperties {
  correlation_id: string;
  reply_to?: string;
  delivery_mode?: number;
  /** Milliseconds as a decimal string; set with `expires`. */
  expiration?: string;
  priority?: number;
  [extra: string]: unknown;
}

/** A decoded task message. */
export interface TaskMessage {
  headers: TaskHeaders;
  properties: MessageProperties;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: Embed;
}

/**
 * What a transport carries: an encoded body plus headers and properties. Transports move this and
 * nothing above it; encoding, routing and retries live in core, client and worker.
 */
export interface WireMessage {
  /** The encoded body text (JSON for task messages). */
  body: string;
  contentType: string;
  contentEncoding: string;
  headers: Record<string, unknown>;
  properties: Record<string, unknown>;
}

export const JSON_CONTENT_TYPE = "application/json";

export interface TaskMessageInput {
  task: string;
  id?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  eta?: Date | null;
  expires?: Date | null;
  retries?: number;
  /** [hard, soft] in seconds, as in the `timelimit` header. */
  timeLimit?: [number | null, number | null];
  rootId?: string | null;
  parentId?: string | null;
  group?: string | null;
  groupIndex?: number | null;
  shadow?: string | null;
  ignoreResult?: boolean;
  priority?: number;
  replyTo?: string;
  /** Extra headers, sent as they are after Celery's own. */
  headers?: Record<string, unknown>;
  embed?: Partial<Embed>;
}

const ORIGIN = `gen${process.pid}@${hostname()}`;

/** Builds a protocol v2 message with every header Celery 5 sends, in Celery's order. */
export function createTaskMessage(input: TaskMessageInput): TaskMessage {
  const id = input.id ?? randomUUID();
  const args = input.args ?? [];
  const kwargs = input.kwargs ?? {};
  const headers: TaskHeaders = {
    lang: "py",
    task: input.task,
    id,
    shadow: input.shadow ?? null,
    eta: input.eta ? formatCeleryDate(input.eta) : null,
    expires: input.expires ? formatCeleryDate(input.expires) : null,
    group: input.group ?? null,
    group_index: input.groupIndex ?? null,
    retries: input.retries ?? 0,
    timelimit: input.timeLimit ?? [null, null],
    root_id: input.rootId ?? id,
    parent_id: input.parentId ?? null,
    argsrepr: reprArgs(args),
    kwargsrepr: reprKwargs(kwargs),
    origin: ORIGIN,
    ignore_result: input.ignoreResult ?? false,
    ...input.headers,
  };
  const properties: MessageProperties = {
    correlation_id: id,
    ...(input.replyTo !== undefined && { reply_to: input.replyTo }),
    delivery_mode: 2,
    ...(input.expires && {
      expiration: String(Math.max(0, input.expires.getTime() - Date.now())),
    }),
    ...(input.priority !== undefined && { priority: input.priority }),
  };
  const embed: Embed = {
    callbacks: null,
    errbacks: null,
    chain: null,
    chord: null,
    ...input.embed,
  };
  return { headers, properties, args, kwargs, embed };
}

export function encodeTaskMessage(message: TaskMessage): WireMessage {
  return {
    body: encodeJson([message.args, message.kwargs, message.embed]),
    contentType: JSON_CONTENT_TYPE,
    contentEncoding: "utf-8",
    headers: message.headers,
    properties: message.properties,
  };
}

export interface DecodeOptions {
  /** Bodies larger than this are rejected as malformed. @default 10 MiB */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

function malformed(reason: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("MALFORMED_MESSAGE", `malformed task message: ${reason}`, { cause });
}

/**
 * Decodes and strictly validates a task message (protocol v2, or legacy v1). Throws a
 * `MALFORMED_MESSAGE` or `UNSUPPORTED_CONTENT_TYPE` error whose message names what is wrong.
 * Nothing in a message is ever evaluated: only JSON is accepted.
 */
export function decodeTaskMessage(wire: WireMessage, options: DecodeOptions = {}): TaskMessage {
  if (wire.contentType !== JSON_CONTENT_TYPE) {
    throw new CeleryTsError(
      "UNSUPPORTED_CONTENT_TYPE",
      `content type ${JSON.stringify(wire.contentType)} is not accepted: celery-ts reads only ` +
        `${JSON_CONTENT_TYPE} (set task_serializer="json" on Python producers)`,
    );
  }
  const encoding = wire.contentEncoding.toLowerCase();
  if (encoding !== "utf-8" && encoding !== "utf8") {
    throw malformed(`content encoding ${JSON.stringify(wire.contentEncoding)} is not utf-8`);
  }
  const maxBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // The UTF-8 length is at most 3 bytes per UTF-16 unit: only measure exactly when it can matter.
  if (wire.body.length * 3 > maxBytes && Buffer.byteLength(wire.body) > maxBytes) {
    throw malformed(
      `body is ${Buffer.byteLength(wire.body)} bytes, over the ${maxBytes}-byte limit`,
    );
  }
  let body: unknown;
  try {
    body = decodeJson(wire.body);
  } catch (error) {
    throw malformed(`body is not valid JSON (${(error as Error).message})`, error);
  }
  if (!isRecord(wire.headers)) throw malformed("headers are not an object");
  if (!isRecord(wire.properties)) throw malformed("properties are not an object");
  if (wire.headers.task === undefined && isRecord(body) && "task" in body) {
    return decodeProtocolV1(body, wire.properties);
  }
  return decodeProtocolV2(body, wire.headers, wire.properties);
}

function decodeProtocolV2(
  body: unknown,
  rawHeaders: Record<string, unknown>,
  rawProperties: Record<string, unknown>,
): TaskMessage {
  if (!Array.isArray(body) || body.length !== 3) {
    throw malformed("body is not a [args, kwargs, embed] array (Celery protocol v2)");
  }
  const [args, kwargs, embed] = body as [unknown, unknown, unknown];
  if (!Array.isArray(args)) throw malformed("args (body[0]) is not an array");
  if (!isRecord(kwargs)) throw malformed("kwargs (body[1]) is not an object");
  if (embed !== null && !isRecord(embed)) throw malformed("embed (body[2]) is not an object");
  const headers = validateHeaders(rawHeaders);
  return {
    headers,
    properties: validateProperties(rawProperties, headers.id),
    args,
    kwargs,
    embed: validateEmbed(embed ?? {}),
  };
}

function decodeProtocolV1(
  body: Record<string, unknown>,
  rawProperties: Record<string, unknown>,
): TaskMessage {
  const { task, id, args = [], kwargs = {}, retries = 0, eta = null, expires = null } = body;
  const timelimit = body.timelimit ?? [null, null];
  const headers = validateHeaders({ lang: "py", task, id, retries, eta, expires, timelimit });
  if (!Array.isArray(args)) throw malformed("args is not an array");
  if (!isRecord(kwargs)) throw malformed("kwargs is not an object");
  return {
    headers,
    properties: validateProperties(rawProperties, headers.id),
    args,
    kwargs,
    embed: validateEmbed({ callbacks: body.callbacks ?? null, errbacks: body.errbacks ?? null }),
  };
}

function validateHeaders(raw: Record<string, unknown>): TaskHeaders {
  const task = raw.task;
  if (typeof task !== "string" || task === "") {
    throw malformed("header 'task' is missing or not a string (it names the task to run)");
  }
  const id = raw.id;
  if (typeof id !== "string" || id === "") {
    throw malformed(`header 'id' is missing or not a string (task ${task})`);
  }
  const retries = raw.retries ?? 0;
  if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0) {
    throw malformed(`header 'retries' is not a non-negative integer (task ${task}[${id}])`);
  }
  const timelimit = raw.timelimit ?? [null, null];
  if (
    !Array.isArray(timelimit) ||
    timelimit.length !== 2 ||
    !isTimeLimit(timelimit[0]) ||
    !isTimeLimit(timelimit[1])
  ) {
    throw malformed(`header 'timelimit' is not [hard, soft] seconds (task ${task}[${id}])`);
  }
  return {
    ...raw,
    lang: optionalString(raw, "lang") ?? "py",
    task,
    id,
    shadow: optionalString(raw, "shadow"),
    eta: optionalDate(raw, "eta"),
    expires: optionalDate(raw, "expires"),
    group: optionalString(raw, "group"),
    group_index: optionalNumber(raw, "group_index"),
    retries,
    timelimit: timelimit as [number | null, number | null],
    root_id: optionalString(raw, "root_id"),
    parent_id: optionalString(raw, "parent_id"),
    argsrepr: optionalString(raw, "argsrepr"),
    kwargsrepr: optionalString(raw, "kwargsrepr"),
    origin: optionalString(raw, "origin"),
    ignore_result: raw.ignore_result === true,
  };
}

function isTimeLimit(value: unknown): boolean {
  return value === null || (typeof value === "number" && Number.isFinite(value) && value > 0);
}

function validateProperties(raw: Record<string, unknown>, id: string): MessageProperties {
  const priority = raw.priority;
  if (priority !== undefined && priority !== null && typeof priority !== "number") {
    throw malformed(`property 'priority' is not a number (task ${id})`);
  }
  const correlationId = raw.correlation_id;
  return { ...raw, correlation_id: typeof correlationId === "string" ? correlationId : id };
}

function validateEmbed(raw: Record<string, unknown>): Embed {
  const chord = raw.chord ?? null;
  if (chord !== null && !isSignature(chord)) throw malformed("embed 'chord' is not a signature");
  return {
    callbacks: signatureList(raw, "callbacks"),
    errbacks: signatureList(raw, "errbacks"),
    chain: signatureList(raw, "chain"),
    chord,
  };
}

function signatureList(raw: Record<string, unknown>, key: string): Signature[] | null {
  const value = raw[key] ?? null;
  if (value !== null && (!Array.isArray(value) || !value.every(isSignature))) {
    throw malformed(`embed '${key}' is not a list of signatures`);
  }
  return value as Signature[] | null;
}

/**
 * Writes a date header as Python's `isoformat()` does for an aware UTC datetime. A `Z` suffix
 * would break `datetime.fromisoformat` on Python < 3.11, which newer Celery uses to read it.
 */
export function formatCeleryDate(date: Date): string {
  return `${date.toISOString().slice(0, -1)}000+00:00`;
}

/**
 * Reads a date header. Celery writes ISO-8601 with an offset; a date without one is UTC, as Celery
 * reads it with `enable_utc` (its default), not local time as `Date.parse` would.
 */
export function parseCeleryDate(value: string): Date {
  const hasZone = /(?:[zZ]|[+-]\d{2}:?\d{2})$/.test(value);
  return new Date(hasZone || !value.includes("T") ? value : `${value}Z`);
}

function isSignature(value: unknown): value is Signature {
  return isRecord(value) && typeof value.task === "string";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalString(raw: Record<string, unknown>, key: string): string | null {
  const value = raw[key] ?? null;
  if (value !== null && typeof value !== "string")
    throw malformed(`header '${key}' is not a string`);
  return value;
}

function optionalNumber(raw: Record<string, unknown>, key: string): number | null {
  const value = raw[key] ?? null;
  if (value !== null && typeof value !== "number")
    throw malformed(`header '${key}' is not a number`);
  return value;
}

function optionalDate(raw: Record<string, unknown>, key: string): string | null {
  const value = raw[key] ?? null;
  if (value instanceof Date) return value.toISOString();
  if (
    value !== null &&
    (typeof value !== "string" || Number.isNaN(parseCeleryDate(value).getTime()))
  ) {
    throw malformed(`header '${key}' is not an ISO-8601 date`);
  }
  return value;
}
