import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../src/index.ts";

describe("retryDelaySeconds", () => {
  it("doubles the delay on each retry up to the cap", () => {
    const policy = { delay: 2, maxDelay: 10, jitter: false };
    expect([0, 1, 2, 3, 4].map((n) => retryDelaySeconds(policy, n))).toEqual([2, 4, 8, 10, 10]);
  });

  it("keeps a fixed delay when asked", () => {
    expect(retryDelaySeconds({ delay: 3, backoff: "fixed", jitter: false }, 5)).toBe(3);
  });

  it("spreads retries between 0 and the computed delay with full jitter", () => {
    expect(retryDelaySeconds({ delay: 4 }, 1, () => 0.25)).toBe(2);
    expect(retryDelaySeconds({ delay: 4 }, 1, () => 0)).toBe(0);
  });
});
