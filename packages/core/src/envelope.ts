import { CeleryTsError } from "./errors.ts";
import { decodeJson, encodeJson } from "./json.ts";
import type { WireMessage } from "./task-message.ts";

/**
 * kombu's "virtual" transports (Redis, SQS, SQLAlchemy) store each message as one JSON envelope:
 * the body base64-encoded, with headers and properties beside it. We store the same envelope, so a
 * Python worker can read what we queue and the other way round.
 */
export interface EnvelopeRoute {
  exchange: string;
  routingKey: string;
  priority: number;
  deliveryTag: string;
}

export function encodeEnvelope(message: WireMessage, route: EnvelopeRoute): string {
  const { base64: body, rest } = envelopeParts(message, route);
  return `${ENVELOPE_HEAD}${body}${ENVELOPE_MIDDLE}${rest}`;
}

/** What an envelope starts with, before the body's base64. */
export const ENVELOPE_HEAD = '{"body": "';
/** What comes between the body's base64 and `rest`. */
export const ENVELOPE_MIDDLE = '", ';

/**
 * An envelope in parts, for a writer of bytes (a PUBLISH frame): the envelope is `ENVELOPE_HEAD`,
 * `base64`, `ENVELOPE_MIDDLE`, then `rest`, exactly `encodeEnvelope`'s text. Both parts are ASCII
 * (`encodeJson` escapes what is not).
 */
export function envelopeParts(
  message: WireMessage,
  route: EnvelopeRoute,
): { base64: string; rest: string } {
  const properties = messageProperties(message.properties);
  const rest = encodeJson({
    "content-encoding": message.contentEncoding,
    "content-type": message.contentType,
    headers: message.headers,
    properties: {
      ...properties,
      delivery_info: { exchange: route.exchange, routing_key: route.routingKey },
      priority: route.priority,
      body_encoding: "base64",
      delivery_tag: route.deliveryTag,
    },
  });
  // Base64 needs no JSON escaping: the body goes in as it is, first as kombu writes it, which
  // spares the encoder's scan of the envelope's longest string (a batch of events, a big task).
  return { base64: base64(message.body), rest: rest.slice(1) };
}

/** The most bytes `base64()` keeps for its reused buffer. */
const SCRATCH_LIMIT = 512 * 1024;
let scratch = Buffer.alloc(0);

/**
 * The base64 of a text's UTF-8 bytes. The bytes go through one buffer kept for the next text:
 * a new buffer per body, beyond Node's small-buffer pool, cost ten times the encoding (a batch of
 * task events, ~40 kB, every turn of a busy worker).
 */
function base64(text: string): string {
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  const most = text.length * 3;
  if (most > SCRATCH_LIMIT) return Buffer.from(text, "utf8").toString("base64");
  if (scratch.length < most) scratch = Buffer.allocUnsafe(Math.min(SCRATCH_LIMIT, most * 2));
  return scratch.toString("base64", 0, scratch.write(text, "utf8"));
}

/** Properties the envelope owns; the rest belong to the message. */
function messageProperties(all: Record<string, unknown>): Record<string, unknown> {
  const {
    priority: _priority,
    delivery_info: _deliveryInfo,
    body_encoding: _bodyEncoding,
    delivery_tag: _deliveryTag,
    ...properties
  } = all;
  return properties;
}

export interface DecodedEnvelope {
  message: WireMessage;
  deliveryTag: string | undefined;
}

function malformed(reason: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("MALFORMED_MESSAGE", `malformed message envelope: ${reason}`, { cause });
}

/** Reads an envelope; throws a `MALFORMED_MESSAGE` error that says what is wrong. */
export function decodeEnvelope(raw: string): DecodedEnvelope {
  let envelope: unknown;
  try {
    envelope = decodeJson(raw);
  } catch (error) {
    throw malformed(`not JSON (${(error as Error).message})`, error);
  }
  if (typeof envelope !== "object" || envelope === null || Array.isArray(envelope)) {
    throw malformed("not a JSON object");
  }
  const e = envelope as Record<string, unknown>;
  const properties = e.properties ?? {};
  const headers = e.headers ?? {};
  if (typeof e.body !== "string") throw malformed("'body' is missing or not a string");
  if (typeof properties !== "object" || properties === null || Array.isArray(properties)) {
    throw malformed("'properties' is not an object");
  }
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
    throw malformed("'headers' is not an object");
  }
  const props = properties as Record<string, unknown>;
  let body = e.body;
  if (props.body_encoding === "base64") {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw malformed("'body' is not valid base64");
    body = Buffer.from(body, "base64").toString("utf8");
  } else if (props.body_encoding !== undefined) {
    throw malformed(`unknown body_encoding ${JSON.stringify(props.body_encoding)}`);
  }
  // One copy of the properties (the envelope's own taken out), the priority put back last.
  const messageProps = messageProperties(props);
  if (typeof props.priority === "number") messageProps.priority = props.priority;
  return {
    message: {
      body,
      contentType: typeof e["content-type"] === "string" ? e["content-type"] : "",
      contentEncoding: typeof e["content-encoding"] === "string" ? e["content-encoding"] : "utf-8",
      headers: headers as Record<string, unknown>,
      properties: messageProps,
    },
    deliveryTag: typeof props.delivery_tag === "string" ? props.delivery_tag : undefined,
  };
}
