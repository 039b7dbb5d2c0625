import { encodeEnvelope, type WireMessage } from "@celery-ts/core";
import { Command } from "ioredis";
import { describe, expect, it } from "vitest";
import { publishFrame, PublishFrame } from "../src/internal/publish-frame.ts";

/** What ioredis writes for `publish(channel, text)`, as bytes. */
function ioredisBytes(channel: string, text: string): Buffer {
  return Buffer.from(new Command("publish", [channel, text]).toWritable({}) as string, "utf8");
}

const route = { exchange: "celeryev", routingKey: "task.multi", priority: 0, deliveryTag: "t-1" };

function message(body: string, hostname: string): WireMessage {
  return {
    body,
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { hostname },
    properties: { delivery_mode: 1 },
  };
}

describe("publishFrame", () => {
  it("writes the bytes ioredis writes for PUBLISH of the envelope, non-ASCII included", () => {
    for (const [body, hostname, channel] of [
      ['[{"type": "task-started"}]', "celery@host", "/0.celeryev/task.multi"],
      ['{"a": "h\\u00e9"} ünï ✓', "célery@hôte", "prefix·/2.celeryev/task.started"],
      ["x".repeat(100_000), "celery@host", "/1.celeryev/task.multi"],
    ] as const) {
      const m = message(body, hostname);
      const { frame, release } = publishFrame(channel, m, route);
      expect(frame.equals(ioredisBytes(channel, encodeEnvelope(m, route)))).toBe(true);
      release();
    }
  });

  it("leaves a frame alone until it is released", () => {
    const first = publishFrame("/0.celeryev/task.multi", message("first", "h"), route);
    const copy = Buffer.from(first.frame);
    const second = publishFrame("/0.celeryev/task.multi", message("second", "h"), route);
    expect(first.frame.equals(copy)).toBe(true);
    first.release();
    second.release();
    const third = publishFrame("/0.celeryev/task.multi", message("third!", "h"), route);
    expect(third.frame.includes(Buffer.from(Buffer.from("third!").toString("base64")))).toBe(true);
    third.release();
  });

  it("hands a buffer released twice to one frame only", () => {
    const first = publishFrame("/0.celeryev/task.multi", message("first", "h"), route);
    first.release();
    first.release();
    const second = publishFrame("/0.celeryev/task.multi", message("second", "h"), route);
    const copy = Buffer.from(second.frame);
    const third = publishFrame("/0.celeryev/task.multi", message("third!", "h"), route);
    expect(second.frame.equals(copy)).toBe(true);
    expect(third.frame.buffer === second.frame.buffer).toBe(false);
    second.release();
    third.release();
  });

  it("keeps the buffer of a frame between 512 KB and 1 MB for the next frame", () => {
    const big = publishFrame("/0.celeryev/task.multi", message("x".repeat(600_000), "h"), route);
    big.release();
    const next = publishFrame("/0.celeryev/task.multi", message("y".repeat(600_000), "h"), route);
    expect(next.frame.buffer === big.frame.buffer).toBe(true);
    next.release();
  });

  it("names the channel in the PUBLISH command", () => {
    const { frame, release } = publishFrame("/0.celeryev/task.multi", message("a", "h"), route);
    expect(new PublishFrame("/0.celeryev/task.multi", frame).args).toEqual([
      "/0.celeryev/task.multi",
    ]);
    release();
  });
});
