import { describe, expect, it } from "vitest";
import { decodeJson, encodeJson, isCeleryTsError } from "../src/index.ts";

describe("encodeJson writes JSON as Python's json.dumps does", () => {
  it("uses Python's separators and escapes non-ASCII", () => {
    expect(encodeJson({ a: [1, "é", null, true], b: {} })).toBe(
      '{"a": [1, "\\u00e9", null, true], "b": {}}',
    );
    expect(encodeJson("😀\u007f\n")).toBe('"\\ud83d\\ude00\\u007f\\n"');
  });

  it("writes dates as ISO strings and bigints exactly", () => {
    expect(encodeJson([new Date("2026-01-01T00:00:00Z"), 2n ** 70n])).toBe(
      '["2026-01-01T00:00:00.000Z", 1180591620717411303424]',
    );
  });

  it("leaves out undefined fields, like JSON.stringify", () => {
    expect(encodeJson({ a: undefined, b: 1 })).toBe('{"b": 1}');
  });

  it("writes what JSON.stringify writes for holes, inherited fields and key order", () => {
    // eslint-disable-next-line no-sparse-arrays -- the hole is the point
    expect(encodeJson([1, , 3])).toBe("[1, null, 3]");
    const child = Object.create({ inherited: 1 }) as Record<string, unknown>;
    child.own = 2;
    expect(encodeJson(child)).toBe('{"own": 2}');
    expect(encodeJson({ b: 1, 2: "x", a: [], 1: null })).toBe(
      '{"1": null, "2": "x", "b": 1, "a": []}',
    );
    const shared = { n: 1 };
    expect(encodeJson([shared, { again: shared }])).toBe('[{"n": 1}, {"again": {"n": 1}}]');
  });

  it.each([
    ["NaN", NaN],
    [
      "a cycle",
      (() => {
        const a: unknown[] = [];
        a.push(a);
        return a;
      })(),
    ],
    ["binary data", new Uint8Array(2)],
    ["a Map", new Map([["a", 1]])],
    ["a function in an array (JSON.stringify would write null)", [1, () => 2]],
    ["a function in an object (JSON.stringify would drop it)", { onDone: () => 2 }],
    ["a symbol in an object", { s: Symbol("x") }],
  ])("refuses %s with an ENCODE error", (_what, value) => {
    let error: unknown;
    try {
      encodeJson(value);
    } catch (e) {
      error = e;
    }
    expect(isCeleryTsError(error, "ENCODE")).toBe(true);
  });

  it("agrees with JSON.parse on what it wrote", () => {
    const value = {
      text: 'line\n"quoted" \\ tab\t ✓',
      list: [0.5, -3, 1e21],
      nested: { ok: false },
    };
    expect(JSON.parse(encodeJson(value))).toEqual(value);
  });
});

describe("decodeJson keeps integers exact", () => {
  const python = "[9007199254740993, 9223372036854775807, 18446744073709551617, -9007199254740993]";

  it("reads integers beyond 2^53 as bigints and writes them back byte for byte", () => {
    const decoded = decodeJson(python);
    expect(decoded).toEqual([2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 64n + 1n, -(2n ** 53n) - 1n]);
    expect(encodeJson(decoded)).toBe(python.replaceAll(",", ", ").replaceAll(",  ", ", "));
  });

  it("keeps safe integers and every float a number, whatever its digits", () => {
    expect(
      decodeJson(
        '{"a": 9007199254740991, "b": 0.30000000000000004, "c": 1e+300, "d": 1234567890123456}',
      ),
    ).toEqual({ a: 9007199254740991, b: 0.30000000000000004, c: 1e300, d: 1234567890123456 });
    expect(decodeJson("[9007199254740993.0, 12345678901234567890e0]")).toEqual([
      9007199254740992, 12345678901234567000,
    ]);
  });

  it("finds long integers anywhere: first, last, nested, beside markers, after long strings", () => {
    const long = "18446744073709551617";
    for (const text of [
      long,
      `[${long}]`,
      `{"x": "${"y".repeat(37)}", "n": [[${long}]]}`,
      `{"a": {"__type__": "uuid", "__value__": {"hex": "${"a".repeat(32)}"}}, "n": ${long}}`,
      `${"[".repeat(7)}1, 2, 3, 123456789012345, ${long}${"]".repeat(7)}`,
    ]) {
      expect(
        JSON.stringify(decodeJson(text), (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)),
      ).toContain(`"${long}n"`);
    }
  });

  it("finds a long integer at every offset and beside shorter digit runs (the stride scan)", () => {
    const big = 2n ** 64n + 1n;
    for (let pad = 0; pad < 40; pad++) {
      for (const before of ["", "123456789012345, ", "1, 22, 333, "]) {
        const text = `["${"x".repeat(pad)}", ${before}${big}, 7]`;
        const decoded = decodeJson(text) as unknown[];
        expect(decoded.at(-2), text).toBe(big);
      }
      // A 15-digit run at any offset stays a number (and takes the fast path).
      expect(decodeJson(`["${"x".repeat(pad)}", 123456789012345]`)).toEqual([
        "x".repeat(pad),
        123456789012345,
      ]);
    }
  });

  it("leaves digit runs inside strings alone", () => {
    expect(decodeJson('["12345678901234567890", 1]')).toEqual(["12345678901234567890", 1]);
  });
});
