import { encodeJson } from "@celery-ts/core";

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The envelope as an object, or undefined when it is not a JSON object (a malformed message). */
export function parseEnvelope(raw: string): JsonObject | undefined {
  try {
    const parsed: unknown = JSON.parse(raw);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function deliveryInfo(envelope: JsonObject | undefined): JsonObject | undefined {
  const properties = envelope?.properties;
  if (!isObject(properties)) return undefined;
  return isObject(properties.delivery_info) ? properties.delivery_info : undefined;
}

/** Whether kombu (or we) put the message back after a delivery: `delivery_info.redelivered`. */
export function isRedelivered(envelope: JsonObject | undefined): boolean {
  return deliveryInfo(envelope)?.redelivered === true;
}

/** The message's priority property, as kombu reads it to pick the list. */
export function priorityOf(envelope: JsonObject | undefined): unknown {
  const properties = envelope?.properties;
  return isObject(properties) ? properties.priority : undefined;
}

/**
 * The envelope as kombu puts it back on a queue (`_do_restore_message`): `headers.redelivered`
 * and `properties.delivery_info.redelivered` set to true, written as Python's json.dumps writes.
 * A malformed message goes back exactly as it was.
 */
export function markRedelivered(
  raw: string,
  envelope = parseEnvelope(raw),
  redelivered = true,
): string {
  if (!envelope) return raw;
  const marked: JsonObject = { ...envelope };
  if (isObject(marked.headers)) marked.headers = { ...marked.headers, redelivered };
  const info = deliveryInfo(envelope);
  if (info && isObject(marked.properties)) {
    marked.properties = {
      ...marked.properties,
      delivery_info: { ...info, redelivered },
    };
  }
  return encodeJson(marked);
}
