import { createRequire } from "node:module";
import type * as Amqplib from "amqplib";

/**
 * amqplib, with one fix to its field-table decoder, applied before amqplib loads it.
 *
 * py-amqp (Python Celery) writes integers beyond 32 bits with the tag `L`, which amqplib 2.3.1
 * does not know: a header such as `{"sent_at_ms": 1700000000000}` from a Python producer makes
 * amqplib throw while reading the frame, which closes the whole connection; the message is then
 * redelivered and closes the next one, forever. When amqplib's decoder throws on an unknown tag,
 * we decode the table again with `decodeTable` below, which knows `L` (and `U`) too and otherwise
 * returns exactly what amqplib's does. amqplib binds the decoder when its protocol definitions
 * load, so this module must load amqplib itself (every other module imports it from here).
 */

const require = createRequire(import.meta.url);

interface Codec {
  decodeFields(slice: Buffer): Record<string, unknown>;
  lenient?: true;
}

function loadCodec(): Codec | undefined {
  try {
    const codec = require(
      require.resolve("amqplib").replace(/channel_api\.js$/, "lib/codec.js"),
    ) as Partial<Codec>;
    return typeof codec.decodeFields === "function" ? (codec as Codec) : undefined;
  } catch {
    // Another amqplib layout: run without the fix rather than not at all.
    return undefined;
  }
}

const codec = loadCodec();
// amqplib binds the decoder when its protocol definitions load: if another module loaded amqplib
// first, the fix below comes too late for that copy.
const definitionsLoaded = Object.keys(require.cache).some((path) =>
  /[\\/]amqplib[\\/]lib[\\/]defs\.js$/.test(path),
);
if (codec && !codec.lenient) {
  const strict = codec.decodeFields;
  codec.decodeFields = (slice: Buffer) => {
    try {
      return strict(slice);
    } catch (error) {
      if (error instanceof TypeError && /Unexpected type tag/.test(error.message)) {
        return decodeTable(slice);
      }
      throw error;
    }
  };
  codec.lenient = true;
}

/** Whether amqplib reads py-amqp's `L` tag (false: amqplib was loaded before this package). */
export const lenientDecoding = codec?.lenient === true && !definitionsLoaded;

const amqplib = require("amqplib") as typeof Amqplib;
export const connect = amqplib.connect;

/**
 * A 64-bit integer as a number where a double holds it exactly, else as a bigint (as
 * `decodeJson` reads integers beyond 2^53): `2**63 - 1` from Python arrives unchanged.
 */
function exactInteger(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/** The fixed-size tags of a field table: their size in bytes and how to read them. */
const FIXED: Record<string, [number, (slice: Buffer, offset: number) => unknown]> = {
  b: [1, (b, o) => b.readInt8(o)],
  B: [1, (b, o) => b.readUInt8(o)],
  s: [2, (b, o) => b.readInt16BE(o)],
  U: [2, (b, o) => b.readInt16BE(o)],
  u: [2, (b, o) => b.readUInt16BE(o)],
  I: [4, (b, o) => b.readInt32BE(o)],
  i: [4, (b, o) => b.readUInt32BE(o)],
  l: [8, (b, o) => exactInteger(b.readBigInt64BE(o))],
  L: [8, (b, o) => exactInteger(b.readBigInt64BE(o))],
  f: [4, (b, o) => b.readFloatBE(o)],
  d: [8, (b, o) => b.readDoubleBE(o)],
  t: [1, (b, o) => b[o] !== 0],
  V: [0, () => null],
  D: [5, (b, o) => ({ "!": "decimal", value: { places: b[o]!, digits: b.readUInt32BE(o + 1) } })],
  T: [8, (b, o) => ({ "!": "timestamp", value: Number(b.readBigUInt64BE(o)) })],
};

/** Reads the values of a field table, or of an array in one, from `offset` on. */
class TableReader {
  offset = 0;
  readonly slice: Buffer;

  constructor(slice: Buffer) {
    this.slice = slice;
  }

  value(): unknown {
    const tag = String.fromCharCode(this.slice[this.offset]!);
    this.offset++;
    const fixed = FIXED[tag];
    if (fixed) {
      const [size, read] = fixed;
      const result = read(this.slice, this.offset);
      this.offset += size;
      return result;
    }
    if (!"SxFA".includes(tag)) throw new TypeError(`Unexpected type tag "${tag}"`);
    const length = this.slice.readUInt32BE(this.offset);
    this.offset += 4;
    const start = this.offset;
    const end = start + length;
    if (tag === "A") {
      const items: unknown[] = [];
      while (this.offset < end) items.push(this.value());
      return items;
    }
    this.offset = end;
    if (tag === "S") return this.slice.toString("utf8", start, end);
    if (tag === "x") return this.slice.subarray(start, end);
    return decodeTable(this.slice.subarray(start, end));
  }
}

/** A field table as amqplib decodes it, plus the `L` (int64) and `U` (int16) tags. */
export function decodeTable(slice: Buffer): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const reader = new TableReader(slice);
  while (reader.offset < slice.length) {
    const length = slice.readUInt8(reader.offset);
    reader.offset++;
    const key = slice.toString("utf8", reader.offset, reader.offset + length);
    reader.offset += length;
    fields[key] = reader.value();
  }
  return fields;
}
