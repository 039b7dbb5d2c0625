import { encodeError } from "./errors.ts";

/**
 * AMQP field tables (message headers, declaration arguments), written so that py-amqp (what
 * Celery and kombu use) reads back what we meant, and read so that what py-amqp writes arrives as
 * the JavaScript value one would expect.
 *
 * amqplib guesses number types by size: 5 becomes a signed byte (`b`) and 300 a signed short
 * (`s`). py-amqp reads `b` as unsigned and `s` as a *short string*, so a header of 300 (a time
 * limit) would corrupt the whole table on the Python side. We tag every value ourselves, with the
 * tags py-amqp writes: `I` for 32-bit integers, `l` for larger positive ones (py-amqp writes `L`,
 * which amqplib cannot read; it reads `l` as unsigned, which is right for positive numbers), `d`
 * for everything else, `T` (seconds) for dates, `x` for bytes, `V` for null.
 */

type Tagged = { "!": string; value: unknown };

const INT32_MAX = 2_147_483_647;
const INT64_MAX = 2n ** 63n - 1n;
const SKIP = Symbol("skip");

function encodeNumber(value: number): Tagged {
  if (Number.isInteger(value) && Math.abs(value) <= INT32_MAX) return { "!": "int", value };
  if (Number.isSafeInteger(value) && value > 0) return { "!": "long", value };
  return { "!": "double", value };
}

function encodeValue(value: unknown, path: string, ancestors: Set<object>): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return encodeNumber(value);
    case "bigint":
      if (value >= 0n && value <= INT64_MAX) {
        return value <= BigInt(INT32_MAX)
          ? { "!": "int", value: Number(value) }
          : { "!": "long", value };
      }
      if (value >= -BigInt(INT32_MAX)) return { "!": "int", value: Number(value) };
      throw encodeError(`header ${path}: ${value} is outside the range AMQP headers can carry`);
    case "undefined":
    case "function":
    case "symbol":
      return SKIP;
    case "object":
      break;
  }
  if (value === null) return null;
  const object = value as object;
  if (object instanceof Date) {
    if (Number.isNaN(object.getTime())) throw encodeError(`header ${path} is an invalid Date`);
    return { "!": "timestamp", value: Math.floor(object.getTime() / 1000) };
  }
  if (ArrayBuffer.isView(object)) {
    return Buffer.from(object.buffer, object.byteOffset, object.byteLength);
  }
  if (typeof (object as { toJSON?: unknown }).toJSON === "function") {
    return encodeValue((object as { toJSON(): unknown }).toJSON(), path, ancestors);
  }
  if (ancestors.has(object)) {
    throw encodeError(`header ${path} contains itself (a cycle) and cannot be sent`);
  }
  ancestors.add(object);
  try {
    if (Array.isArray(object)) {
      return object.map((item: unknown, index) => {
        const encoded = encodeValue(item, `${path}[${index}]`, ancestors);
        return encoded === SKIP ? null : encoded;
      });
    }
    return encodeEntries(object as Record<string, unknown>, path, ancestors);
  } finally {
    ancestors.delete(object);
  }
}

function encodeEntries(
  table: Record<string, unknown>,
  path: string,
  ancestors: Set<object>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(table)) {
    const where = path === "" ? JSON.stringify(key) : `${path}.${key}`;
    if (key === "!") {
      // amqplib reads a "!" key as a type tag: it cannot send one as data.
      throw encodeError(`header ${where}: a key named "!" cannot be sent over AMQP with amqplib`);
    }
    if (Buffer.byteLength(key) > 255) {
      throw encodeError(`header key ${where.slice(0, 40)}... is longer than AMQP's 255 bytes`);
    }
    const encoded = encodeValue(item, where, ancestors);
    if (encoded !== SKIP) out[key] = encoded;
  }
  return out;
}

/** A headers (or arguments) table, tagged for amqplib as py-amqp writes it. */
export function encodeFieldTable(table: Record<string, unknown>): Record<string, unknown> {
  return encodeEntries(table, "", new Set());
}

function isTagged(value: object): value is Tagged {
  return Object.hasOwn(value, "!") && Object.hasOwn(value, "value");
}

function decodeDecimal({ places, digits }: { places: number; digits: number }): string {
  if (places === 0) return String(digits);
  const text = String(digits).padStart(places + 1, "0");
  return `${text.slice(0, -places)}.${text.slice(-places)}`;
}

function decodeValue(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Buffer.isBuffer(value)) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(decodeValue);
  if (isTagged(value)) {
    if (value["!"] === "timestamp") return new Date(Number(value.value) * 1000);
    if (value["!"] === "decimal") {
      return decodeDecimal(value.value as { places: number; digits: number });
    }
    return value.value;
  }
  return decodeFieldTable(value as Record<string, unknown>);
}

/**
 * A table as amqplib decoded it, as plain values: timestamps become `Date`s (py-amqp gives
 * `datetime`s), decimals their exact decimal string, byte arrays `Uint8Array` copies.
 */
export function decodeFieldTable(
  table: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(table ?? {})) out[key] = decodeValue(value);
  return out;
}
