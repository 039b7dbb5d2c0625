import { afterEach, expect, it, vi } from "vitest";
import { setLongTimeout } from "../src/internal/long-timeout.ts";

afterEach(() => {
  vi.useRealTimers();
});

it("waits a delay longer than Node's timer limit in full", () => {
  vi.useFakeTimers();
  const fired = vi.fn();
  const thirtyDays = 30 * 24 * 3600 * 1000;
  setLongTimeout(fired, thirtyDays);
  vi.advanceTimersByTime(thirtyDays - 1000);
  expect(fired).not.toHaveBeenCalled();
  vi.advanceTimersByTime(1000);
  expect(fired).toHaveBeenCalledOnce();
});

it("can be cleared while re-arming", () => {
  vi.useFakeTimers();
  const fired = vi.fn();
  const timer = setLongTimeout(fired, 60 * 24 * 3600 * 1000);
  vi.advanceTimersByTime(25 * 24 * 3600 * 1000);
  timer.clear();
  vi.runAllTimers();
  expect(fired).not.toHaveBeenCalled();
});
