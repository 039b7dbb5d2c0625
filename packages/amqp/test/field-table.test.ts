import { createRequire } from "node:module";
import { isCeleryTsError } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { decodeFieldTable, encodeFieldTable } from "../src/internal/field-table.ts";

// amqplib's own codec (not exported), for the bytes it writes from our tagged values.
const codec = createRequire(import.meta.url)(
  createRequire(import.meta.url)
    .resolve("amqplib")
    .replace(/channel_api\.js$/, "lib/codec.js"),
) as {
  encodeTable(buffer: Buffer, value: unknown, offset: number): number;
  decodeFields(slice: Buffer): Record<string, unknown>;
};

/** The type tag amqplib writes for each header (after the table size, key length and key). */
function tags(headers: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([key, value]) => {
      const buffer = Buffer.alloc(1024);
      codec.encodeTable(buffer, encodeFieldTable({ [key]: value }), 0);
      return [key, String.fromCharCode(buffer[5 + Buffer.byteLength(key)]!)];
    }),
  );
}

describe("headers as py-amqp reads them", () => {
  it("writes integers as py-amqp does: I for 32 bits, never amqplib's b or s", () => {
    // py-amqp reads "b" as unsigned and "s" as a short *string*: a time limit of 300 written by
    // amqplib's guess would break the whole table in a Python worker.
    expect(tags({ retries: 0, small: -1, limit: 300, big: 70_000, huge: 2 ** 40 })).toEqual({
      retries: "I",
      small: "I",
      limit: "I",
      big: "I",
      huge: "l",
    });
  });

  it("writes floats, booleans, null, strings, arrays, tables, dates and bytes", () => {
    expect(
      tags({
        ratio: 1.5,
        nan: Number.NaN,
        flag: true,
        none: null,
        text: "ü",
        list: [1, null],
        table: { a: 1 },
        when: new Date(0),
        bytes: new Uint8Array([1, 2]),
      }),
    ).toEqual({
      ratio: "d",
      nan: "d",
      flag: "t",
      none: "V",
      text: "S",
      list: "A",
      table: "F",
      when: "T",
      bytes: "x",
    });
  });

  it("round-trips Celery's headers, nulls, [hard, soft] time limits and nested values", () => {
    const headers = {
      lang: "py",
      task: "tasks.add",
      id: "6f1c",
      shadow: null,
      eta: null,
      retries: 3,
      timelimit: [null, 30],
      group_index: null,
      ignore_result: false,
      stamps: { a: ["x", 1, 2.5, null, { deep: true }] },
      negative: -7,
      large: 9_007_199_254_740_991,
    };
    const buffer = Buffer.alloc(65_536);
    const size = codec.encodeTable(buffer, encodeFieldTable(headers), 0);
    expect(decodeFieldTable(codec.decodeFields(buffer.subarray(4, size)))).toEqual(headers);
  });

  it("leaves out undefined, functions and symbols in tables, and writes null for them in arrays", () => {
    expect(
      encodeFieldTable({ a: undefined, b: () => 1, c: [undefined, Symbol("s")], d: "kept" }),
    ).toEqual({ c: [null, null], d: "kept" });
  });

  it("reads timestamps as Dates, decimals as exact strings, bytes as Uint8Array copies", () => {
    expect(
      decodeFieldTable({
        time: { "!": "timestamp", value: 1_700_000_000 },
        price: { "!": "decimal", value: { places: 2, digits: 1999 } },
        cents: { "!": "decimal", value: { places: 3, digits: 5 } },
        raw: Buffer.from([7, 8]),
        nested: [{ "!": "timestamp", value: 0 }],
      }),
    ).toEqual({
      time: new Date(1_700_000_000_000),
      price: "19.99",
      cents: "0.005",
      raw: new Uint8Array([7, 8]),
      nested: [new Date(0)],
    });
  });

  it("refuses what AMQP headers cannot carry with ENCODE errors", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const bad of [
      { cycle },
      { bang: { "!": "x" } },
      { big: -(2n ** 40n) },
      { when: new Date(Number.NaN) },
    ]) {
      let error: unknown;
      try {
        encodeFieldTable(bad);
      } catch (e) {
        error = e;
      }
      expect(isCeleryTsError(error, "ENCODE")).toBe(true);
    }
  });
});

describe("amqplib's decoder, with py-amqp's L tag", () => {
  it("reads tables with L and U, as amqplib reads the rest", async () => {
    const { decodeTable } = await import("../src/internal/amqplib.ts");
    // {"big": L 2^40, "neg": U -2, "list": A [L -1, S "x"], "t": F {"when": T 10}}
    const parts: Buffer[] = [];
    const key = (name: string) => Buffer.concat([Buffer.from([name.length]), Buffer.from(name)]);
    const long = (n: bigint) => {
      const b = Buffer.alloc(9);
      b.write("L");
      b.writeBigInt64BE(n, 1);
      return b;
    };
    parts.push(key("big"), long(2n ** 40n));
    const neg = Buffer.alloc(3);
    neg.write("U");
    neg.writeInt16BE(-2, 1);
    parts.push(key("neg"), neg);
    const str = Buffer.concat([Buffer.from("S"), Buffer.from([0, 0, 0, 1]), Buffer.from("x")]);
    const items = Buffer.concat([long(-1n), str]);
    const arrayLength = Buffer.alloc(4);
    arrayLength.writeUInt32BE(items.length);
    parts.push(key("list"), Buffer.from("A"), arrayLength, items);
    const ts = Buffer.alloc(9);
    ts.write("T");
    ts.writeBigUInt64BE(10n, 1);
    const inner = Buffer.concat([key("when"), ts]);
    const innerLength = Buffer.alloc(4);
    innerLength.writeUInt32BE(inner.length);
    parts.push(key("t"), Buffer.from("F"), innerLength, inner);
    const table = Buffer.concat(parts);
    const decoded = decodeTable(table);
    expect(decoded).toEqual({
      big: 2 ** 40,
      neg: -2,
      list: [-1, "x"],
      t: { when: { "!": "timestamp", value: 10 } },
    });
    // amqplib's own decoder, patched, falls back to it.
    expect(codec.decodeFields(table)).toEqual(decoded);
    expect(decodeFieldTable(decoded)).toMatchObject({ t: { when: new Date(10_000) } });
  });
});
