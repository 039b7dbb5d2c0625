import { describe, expect, it } from "vitest";
import { encodeJson, isCeleryTsError } from "../src/index.ts";

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
