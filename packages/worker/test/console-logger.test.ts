import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createConsoleLogger } from "../src/index.ts";

describe("the console logger", () => {
  it.each(["json", "pretty"] as const)("writes bigints as their digits (%s)", (format) => {
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk.toString()));
    createConsoleLogger({ format, stream }).info("big", { n: 2n ** 64n + 1n, list: [1n] });
    expect(chunks.join("")).toMatch(/18446744073709551617/);
  });
});
