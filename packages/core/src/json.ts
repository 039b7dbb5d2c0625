import { CeleryTsError } from "./errors.ts";

/**
 * JSON as Python's `json.dumps` writes it (kombu's serializer): `", "` and `": "` separators and
 * every non-ASCII character escaped. Messages and results we write then match what Python Celery
 * writes byte for byte, so either side can compare, hash or deduplicate them.
 *
 * Dates are written as ISO-8601 strings (what kombu 5.2 writes, and 5.3+ reads); bigints as JSON
 * integers (Python reads them exactly, and `decodeJson` gives them back as bigints when they are
 * beyond 2^53). NaN, Infinity, cycles and functions throw an `ENCODE` error.
 */
export function encodeJson(value: unknown): string {
  return write(value, []);
}

/**
 * One value's JSON. Strings are built by concatenation and objects walked with `for...in`: an
 * array of parts joined at the end, `Object.entries` and `forEach` made every message's
 * encoding (twice per send: the body, then kombu's envelope) several times slower.
 */
function write(value: unknown, ancestors: object[]): string {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "string":
      return quote(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) {
        throw new CeleryTsError("ENCODE", `${value} cannot be sent as JSON; send null or a string`);
      }
      return String(value);
    case "bigint":
      return value.toString();
    case "object":
      break;
    default:
      // JSON.stringify would write null or drop it: the receiver would get something else.
      throw new CeleryTsError(
        "ENCODE",
        `a ${typeof value} cannot be sent as JSON (a worker receives data, not code); send data`,
      );
  }
  const object = value as Record<string, unknown>;
  if (typeof object.toJSON === "function") {
    return write((object as { toJSON(): unknown }).toJSON(), ancestors);
  }
  // Messages nest a few levels: a list of the open objects is cheaper than a Set per encoding.
  if (ancestors.includes(object)) {
    throw new CeleryTsError(
      "ENCODE",
      "a value that contains itself (a cycle) cannot be sent as JSON",
    );
  }
  ancestors.push(object);
  const text = Array.isArray(object)
    ? writeArray(object, ancestors)
    : writeObject(object, ancestors);
  ancestors.pop();
  return text;
}

function writeArray(array: unknown[], ancestors: object[]): string {
  let out = "[";
  for (let i = 0; i < array.length; i++) {
    if (i > 0) out += ", ";
    // A hole (or undefined) is null, as in JSON.stringify.
    out += write(array[i], ancestors);
  }
  return `${out}]`;
}

function writeObject(object: Record<string, unknown>, ancestors: object[]): string {
  if (ArrayBuffer.isView(object)) {
    throw new CeleryTsError("ENCODE", "binary data cannot be sent as JSON; send it base64-encoded");
  }
  if (object instanceof Map || object instanceof Set) {
    // JSON.stringify would silently write {}: say what to send instead.
    throw new CeleryTsError(
      "ENCODE",
      `a ${object.constructor.name} cannot be sent as JSON; send an array or a plain object`,
    );
  }
  let out = "{";
  let first = true;
  // Own enumerable string keys, in Object.keys order (what JSON.stringify writes).
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    const item = object[key];
    if (item === undefined) continue;
    if (first) first = false;
    else out += ", ";
    out += `${quoteKey(key)}: ${write(item, ancestors)}`;
  }
  return `${out}}`;
}

// Python's ensure_ascii: escape quote, backslash and everything outside printable ASCII.
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/g;
// eslint-disable-next-line no-control-regex -- the same set, tested before replacing
const HAS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

/** Keys recur (every message has the same headers): their quoted forms, up to a bound. */
const quotedKeys = new Map<string, string>();
const MAX_QUOTED_KEYS = 1_000;

function quoteKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = quote(key);
    if (quotedKeys.size < MAX_QUOTED_KEYS) quotedKeys.set(key, quoted);
  }
  return quoted;
}

/** A JSON string literal, as `encodeJson` writes one. */
export function quote(text: string): string {
  // Most strings need no escaping: skip the replace, which is the encoder's hot spot.
  if (!HAS_ESCAPE.test(text)) return `"${text}"`;
  return `"${text.replace(
    NEEDS_ESCAPE,
    (ch) => SHORT_ESCAPES[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  )}"`;
}

/**
 * Parses JSON written by Python or TypeScript peers.
 *
 * Integers beyond 2^53 (Python's ints have no limit) become `BigInt`s, exactly; every other number
 * stays a `number`, so `2**53 + 1` from Python reads as `9007199254740993n` and `encodeJson` writes
 * it back unchanged. Floats stay floats, whatever their digits.
 *
 * kombu 5.3+ wraps some values as `{"__type__": ..., "__value__": ...}`: datetimes become `Date`s,
 * bytes become `Uint8Array`s, and dates, times, decimals and UUIDs their canonical strings
 * (JavaScript has no exact type for them). An unknown marker throws, as it does in kombu.
 */
export function decodeJson(text: string): unknown {
  // Searched without its quotes: a pattern that starts with '"' (the commonest character of JSON)
  // made this search five times slower. A hit that is no marker key merely takes the reviver.
  const markers = text.includes("__type__");
  const longNumbers = hasLongDigitRun(text);
  // A reviver slows every parse down: only text that may need one gets one.
  if (!markers && !longNumbers) return JSON.parse(text);
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) => {
    if (typeof value === "number") {
      return longNumbers ? exactInteger(value, context?.source) : value;
    }
    if (!markers || typeof value !== "object" || value === null || Array.isArray(value)) {
      return value;
    }
    const keys = Object.keys(value);
    if (keys.length !== 2 || !("__type__" in value) || !("__value__" in value)) return value;
    return decodeTypeMarker(value.__type__, value.__value__);
  });
}

/**
 * The exact value of an integer token that a double cannot hold. `source` is the token's text,
 * which JSON.parse hands its reviver (Node 21+; celery-ts needs 22.12).
 */
function exactInteger(value: number, source: string | undefined): number | bigint {
  if (Number.isSafeInteger(value) || source === undefined || !INTEGER_TOKEN.test(source)) {
    return value;
  }
  return BigInt(source);
}

const INTEGER_TOKEN = /^-?\d+$/;

/**
 * Whether `text` has a run of 16 or more digits: every integer beyond 2^53 (16 digits) has one.
 * Looks at every 16th character only, so the common text (no such run) costs a few microseconds
 * per 20 kB; a run found in a string or a float merely takes the exact (slower) parse.
 */
function hasLongDigitRun(text: string): boolean {
  const length = text.length;
  for (let i = 15; i < length; i += 16) {
    if (!isDigit(text.charCodeAt(i))) continue;
    let start = i;
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--;
    let end = i;
    while (end + 1 < length && isDigit(text.charCodeAt(end + 1))) end++;
    if (end - start >= 15) return true;
    // A run of 16 digits starting after `end` must contain one of end+16, end+32, ...
    i = end;
  }
  return false;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function decodeTypeMarker(type: unknown, encoded: unknown): unknown {
  switch (type) {
    case "datetime": {
      const date = new Date(String(encoded));
      if (Number.isNaN(date.getTime())) throw new Error(`invalid datetime ${String(encoded)}`);
      return date;
    }
    case "date":
    case "time":
    case "decimal":
      return String(encoded);
    case "uuid": {
      const hex = String((encoded as { hex?: unknown } | null)?.hex ?? "");
      if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error("invalid uuid marker");
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    case "bytes":
      return new Uint8Array(Buffer.from(String(encoded), "utf8"));
    case "base64":
      return new Uint8Array(Buffer.from(String(encoded), "base64"));
    default:
      throw new Error(`unsupported __type__ marker ${JSON.stringify(type)}`);
  }
}
