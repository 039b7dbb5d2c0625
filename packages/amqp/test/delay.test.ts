import { isCeleryTsError } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import {
  DELAY_LEVELS,
  MAX_DELAY_MS,
  checkDelayTarget,
  delayNames,
  delayRoutingKey,
} from "../src/internal/delay.ts";

describe("the delay chain's routing keys", () => {
  const bits = (key: string): string => key.split(".").slice(0, DELAY_LEVELS).join("");

  it("writes the delay in binary, highest level first, then the queue", () => {
    const key = delayRoutingKey(700, "celery");
    expect(key.endsWith(".celery")).toBe(true);
    expect(bits(key)).toBe((700).toString(2).padStart(DELAY_LEVELS, "0"));
    expect(delayRoutingKey(1, "a.b").split(".")).toHaveLength(DELAY_LEVELS + 2);
  });

  it("rounds a fraction of a millisecond up, never down", () => {
    expect(bits(delayRoutingKey(0.2, "q"))).toBe("1".padStart(DELAY_LEVELS, "0"));
  });

  it("caps the delay at 2^32 - 1 ms (about 49.7 days)", () => {
    expect(MAX_DELAY_MS).toBe(4_294_967_295);
    expect(bits(delayRoutingKey(10 * MAX_DELAY_MS, "q"))).toBe("1".repeat(DELAY_LEVELS));
  });

  it("names levels and the delivery exchange under the prefix", () => {
    const names = delayNames("p");
    expect([names.level(0), names.level(31), names.delivery]).toEqual([
      "p.L00",
      "p.L31",
      "p.delivery",
    ]);
    expect(["p.L00", "p.L31", "p.delivery"].every(names.owns)).toBe(true);
    expect(["p.L0", "p.Lxy", "p", "q.L00", ""].some(names.owns)).toBe(false);
  });

  it("refuses queues a topic binding cannot name exactly", () => {
    for (const queue of ["a.*.b", "#", "x".repeat(200)]) {
      let error: unknown;
      try {
        checkDelayTarget(queue);
      } catch (e) {
        error = e;
      }
      expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    }
    expect(() => checkDelayTarget("tasks.high-priority")).not.toThrow();
  });
});
