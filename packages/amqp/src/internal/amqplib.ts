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

/** A field table as amqplib decodes it, plus the `L` (int64) and `U` (int16) tags. */
export function decodeTable(slice: Buffer): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  let offset = 0;
  const value = (): unknown => {
    const tag = String.fromCharCode(slice[offset]!);
    offset++;
    let result: unknown;
    switch (tag) {
      case "b":
        result = slice.readInt8(offset);
        offset += 1;
        break;
      case "B":
        result = slice.readUInt8(offset);
        offset += 1;
        break;
      case "s":
      case "U":
        result = slice.readInt16BE(offset);
        offset += 2;
        break;
      case "u":
        result = slice.readUInt16BE(offset);
        offset += 2;
        break;
      case "I":
        result = slice.readInt32BE(offset);
        offset += 4;
        break;
      case "i":
        result = slice.readUInt32BE(offset);
        offset += 4;
        break;
      case "l":
      case "L":
        result = Number(slice.readBigInt64BE(offset));
        offset += 8;
        break;
      case "f":
        result = slice.readFloatBE(offset);
        offset += 4;
        break;
      case "d":
        result = slice.readDoubleBE(offset);
        offset += 8;
        break;
      case "t":
        result = slice[offset] !== 0;
        offset += 1;
        break;
      case "V":
        result = null;
        break;
      case "D": {
        const places = slice[offset]!;
        const digits = slice.readUInt32BE(offset + 1);
        offset += 5;
        result = { "!": "decimal", value: { places, digits } };
        break;
      }
      case "T":
        result = { "!": "timestamp", value: Number(slice.readBigUInt64BE(offset)) };
        offset += 8;
        break;
      case "S": {
        const length = slice.readUInt32BE(offset);
        offset += 4;
        result = slice.toString("utf8", offset, offset + length);
        offset += length;
        break;
      }
      case "x": {
        const length = slice.readUInt32BE(offset);
        offset += 4;
        result = slice.subarray(offset, offset + length);
        offset += length;
        break;
      }
      case "F": {
        const length = slice.readUInt32BE(offset);
        offset += 4;
        result = decodeTable(slice.subarray(offset, offset + length));
        offset += length;
        break;
      }
      case "A": {
        const length = slice.readUInt32BE(offset);
        offset += 4;
        const end = offset + length;
        const items: unknown[] = [];
        while (offset < end) items.push(value());
        result = items;
        break;
      }
      default:
        throw new TypeError(`Unexpected type tag "${tag}"`);
    }
    return result;
  };
  while (offset < slice.length) {
    const length = slice.readUInt8(offset);
    offset++;
    const key = slice.toString("utf8", offset, offset + length);
    offset += length;
    fields[key] = value();
  }
  return fields;
}
