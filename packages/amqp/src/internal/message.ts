import type { CeleryTsError, WireMessage } from "@celery-ts/core";
import { oversizeReason } from "@celery-ts/core/driver";
import type { Message, Options } from "amqplib";
import { malformedError } from "./errors.ts";
import { decodeFieldTable, encodeFieldTable } from "./field-table.ts";

/** Celery's property names (snake_case, as py-amqp and kombu spell them) and amqplib's. */
const PROPERTY_NAMES = [
  ["correlation_id", "correlationId"],
  ["reply_to", "replyTo"],
  ["delivery_mode", "deliveryMode"],
  ["priority", "priority"],
  ["expiration", "expiration"],
  ["message_id", "messageId"],
  ["timestamp", "timestamp"],
  ["type", "type"],
  ["user_id", "userId"],
  ["app_id", "appId"],
] as const;

/** Node's names for the text encodings a WireMessage body (a string) can carry exactly. */
function textEncoding(contentEncoding: string): "utf8" | "latin1" | undefined {
  switch (contentEncoding.toLowerCase().replace(/_/g, "-")) {
    case "":
    case "utf-8":
    case "utf8":
      return "utf8";
    case "latin1":
    case "latin-1":
    case "iso-8859-1":
    case "ascii":
    case "us-ascii":
      return "latin1";
    default:
      return undefined;
  }
}

export interface PublishOverrides {
  priority?: number;
  /** Leave out the `expiration` property (a message in the delay chain must not expire early). */
  dropExpiration?: boolean;
  /** Extra headers the transport adds (dead letters). */
  headers?: Record<string, unknown>;
}

/**
 * A WireMessage as an AMQP message, as kombu publishes it: the body as raw bytes, Celery's headers
 * as the headers table, the properties as basic properties, persistent unless told otherwise,
 * priority 0 unless one is given (kombu always sets it).
 */
export function toAmqpMessage(
  wire: WireMessage,
  overrides: PublishOverrides = {},
): { content: Buffer; options: Options.Publish } {
  const properties = wire.properties;
  const options: Options.Publish = {
    contentType: wire.contentType,
    contentEncoding: wire.contentEncoding,
    headers: encodeFieldTable({ ...wire.headers, ...overrides.headers }),
    deliveryMode: 2,
    priority: 0,
  };
  const target = options as Record<string, unknown>;
  for (const [wireName, amqpName] of PROPERTY_NAMES) {
    const value = properties[wireName];
    if (value !== undefined && value !== null) target[amqpName] = value;
  }
  if (typeof options.expiration === "number") options.expiration = String(options.expiration);
  if (overrides.dropExpiration) delete options.expiration;
  if (overrides.priority !== undefined) options.priority = overrides.priority;
  const content = Buffer.from(wire.body, textEncoding(wire.contentEncoding) ?? "utf8");
  return { content, options };
}

/** The body's bytes as a string an operator can read back exactly: one character per byte. */
export function rawText(content: Buffer): string {
  return content.toString("latin1");
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export type Decoded =
  | { message: WireMessage; error?: undefined; raw?: undefined }
  | { message?: undefined; error: CeleryTsError; raw: string };

/** Headers RabbitMQ adds when it dead-letters a message (our delay chain does, once per hop). */
export const DEAD_LETTER_HEADERS = [
  "x-death",
  "x-first-death-exchange",
  "x-first-death-queue",
  "x-first-death-reason",
];

/**
 * An AMQP message as a WireMessage. The body must be text in its content encoding (absent means
 * UTF-8): a WireMessage carries a string, so a binary body (content_encoding "binary", as pickle
 * messages have, or bytes that are not UTF-8) cannot be delivered as one and comes out as
 * `{ error, raw }`, `raw` being its bytes one character each.
 */
export function fromAmqpMessage(message: Message, stripHeaders: readonly string[] = []): Decoded {
  const { properties, content } = message;
  const contentType = typeof properties.contentType === "string" ? properties.contentType : "";
  const declared = typeof properties.contentEncoding === "string" ? properties.contentEncoding : "";
  const encoding = textEncoding(declared);
  let body: string;
  if (encoding === "utf8") {
    try {
      body = UTF8.decode(content);
    } catch {
      return {
        error: malformedError(
          `its body is not valid UTF-8 (content_type ${JSON.stringify(contentType)}, ` +
            `content_encoding ${JSON.stringify(declared || "none")}); celery-ts reads text (JSON) bodies only`,
        ),
        raw: rawText(content),
      };
    }
  } else if (encoding === "latin1") {
    body = content.toString("latin1");
  } else {
    return {
      error: malformedError(
        `its body is binary (content_encoding ${JSON.stringify(declared)}, content_type ` +
          `${JSON.stringify(contentType)}); celery-ts reads text (JSON) bodies only ` +
          '(set task_serializer="json" on Python producers)',
      ),
      raw: rawText(content),
    };
  }
  const headers = decodeFieldTable(properties.headers);
  for (const name of stripHeaders) delete headers[name];
  const wireProperties: Record<string, unknown> = {};
  const source = properties as unknown as Record<string, unknown>;
  for (const [wireName, amqpName] of PROPERTY_NAMES) {
    const value = source[amqpName];
    if (value !== undefined && value !== null) wireProperties[wireName] = value;
  }
  wireProperties.delivery_info = {
    exchange: message.fields.exchange,
    routing_key: message.fields.routingKey,
  };
  return {
    message: {
      body,
      contentType,
      contentEncoding: declared || "utf-8",
      headers,
      properties: wireProperties,
    },
  };
}

/**
 * A message over `maxBytes`, as the error it is delivered as (its head only), or undefined.
 * amqplib has read it whole by then: RabbitMQ's own `max_message_size` (128 MiB by default)
 * bounds what it accepts at all.
 */
export function sizeChecked(message: Message, maxBytes: number): Decoded | undefined {
  if (message.content.length <= maxBytes) return undefined;
  return {
    error: malformedError(oversizeReason(message.content.length, maxBytes)),
    raw: rawText(message.content.subarray(0, 1024)),
  };
}

/** The task id a message's headers name (protocol 2), when they name one. */
export function headerTaskId(message: Message): string | undefined {
  const id: unknown = message.properties.headers?.id;
  if (typeof id === "string" && id !== "") return id;
  return Buffer.isBuffer(id) && id.length > 0 ? id.toString("utf8") : undefined;
}
