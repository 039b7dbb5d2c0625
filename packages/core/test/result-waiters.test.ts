import { describe, expect, it } from "vitest";
import { createResultWaiters, type ResultMeta } from "../src/index.ts";

const meta = (result: unknown): ResultMeta => ({
  status: "SUCCESS",
  result,
  traceback: null,
  children: [],
  date_done: null,
  task_id: "t",
});

describe("createResultWaiters", () => {
  it("resolves every waiter of a key with its own copy, then forgets the key", async () => {
    const idle: string[] = [];
    const waiters = createResultWaiters({ onIdle: (key) => idle.push(key) });
    const request = { timeout: 5, timeoutError: () => new Error("timeout") };
    const both = Promise.all([waiters.wait("a", request), waiters.wait("a", request)]);
    expect(waiters.keys()).toEqual(["a"]);
    waiters.resolve("a", () => meta({ n: 1 }));
    const [first, second] = await both;
    expect(first).toEqual(meta({ n: 1 }));
    expect(first).not.toBe(second);
    expect(waiters.has("a")).toBe(false);
    expect(idle).toEqual(["a"]);
  });

  it("rejects with the caller's timeout error, or the signal's reason", async () => {
    const waiters = createResultWaiters();
    const timedOut = waiters.wait("a", { timeout: 0.01, timeoutError: () => new Error("late") });
    await expect(timedOut).rejects.toThrow("late");
    const controller = new AbortController();
    const aborted = waiters.wait("b", {
      timeout: 5,
      signal: controller.signal,
      timeoutError: () => new Error("late"),
    });
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");
    expect(waiters.keys()).toEqual([]);
  });

  it("rejects every waiter at once, e.g. on close", async () => {
    const waiters = createResultWaiters();
    const request = { timeout: 5, timeoutError: () => new Error("late") };
    const pending = [waiters.wait("a", request), waiters.wait("b", request)];
    waiters.rejectAll(new Error("closed"));
    for (const waiting of pending) await expect(waiting).rejects.toThrow("closed");
  });

  it("rejects only the waiters of a key whose result cannot be copied", async () => {
    const waiters = createResultWaiters();
    const request = { timeout: 5, timeoutError: () => new Error("late") };
    const broken = waiters.wait("a", request);
    const other = waiters.wait("b", request);
    waiters.resolve("a", () => {
      throw new Error("not JSON");
    });
    await expect(broken).rejects.toThrow("not JSON");
    expect(waiters.keys()).toEqual(["b"]);
    waiters.resolve("b", () => meta(2));
    await expect(other).resolves.toEqual(meta(2));
  });
});
