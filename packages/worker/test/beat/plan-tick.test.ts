import { describe, expect, it } from "vitest";
import { parseEntry, tickTaskId, type TickRecord } from "../../src/index.ts";
import { jitterMs, planTick } from "../../src/beat/plan-tick.ts";

const T0 = Date.parse("2026-01-01T12:00:00Z");
const GRACE = 10_000;
const every = (extra: object = {}) => parseEntry({ name: "e", task: "t", every: 1, ...extra });
const rec = (tick: number, state: TickRecord["state"] = "sent"): TickRecord => ({
  tick,
  state,
  id: state === "skipped" ? null : "id",
  token: 1,
  at: tick,
  task: "t",
});

describe("planTick", () => {
  it("sends the next tick once it is due, and waits for it before", () => {
    expect(planTick(every(), rec(T0), T0 + 500, GRACE, false)).toEqual({
      kind: "wait",
      until: T0 + 1000,
    });
    expect(planTick(every(), rec(T0), T0 + 1000, GRACE, false)).toEqual({
      kind: "send",
      tick: T0 + 1000,
    });
  });

  it("sends ticks late by less than the grace one by one: a failover loses none", () => {
    expect(planTick(every(), rec(T0), T0 + 6_500, GRACE, false)).toEqual({
      kind: "send",
      tick: T0 + 1000,
    });
  });

  it("catches up after downtime: once sends the latest, skip sends nothing", () => {
    const late = T0 + 3_600_000 + 250;
    expect(planTick(every(), rec(T0), late, GRACE, false)).toEqual({
      kind: "send",
      tick: T0 + 3_600_000,
    });
    expect(planTick(every({ catchUp: "skip" }), rec(T0), late, GRACE, false)).toEqual({
      kind: "skip",
      tick: T0 + 3_600_000,
    });
  });

  it("publishes a record left in `sending` again, before anything else", () => {
    expect(planTick(every(), rec(T0, "sending"), T0 + 60_000, GRACE, false)).toEqual({
      kind: "resend",
    });
  });

  it("skips what falls due while paused, so resuming sends no catch-up", () => {
    expect(planTick(every(), rec(T0), T0 + 30_000, GRACE, true)).toEqual({
      kind: "skip",
      tick: T0 + 30_000,
    });
    expect(planTick(every(), rec(T0 + 30_000, "skipped"), T0 + 30_500, GRACE, false)).toEqual({
      kind: "wait",
      until: T0 + 31_000,
    });
  });

  it("starts an interval at its latest tick, a crontab at its next, a one-off at its time, once", () => {
    expect(planTick(every(), undefined, T0 + 200, GRACE, false)).toEqual({
      kind: "skip",
      tick: T0 - 1,
    });
    expect(planTick(every(), rec(T0 - 1, "skipped"), T0 + 200, GRACE, false)).toEqual({
      kind: "send",
      tick: T0,
    });
    const cron = parseEntry({ name: "c", task: "t", crontab: "* * * * *" });
    expect(planTick(cron, undefined, T0 + 200, GRACE, false)).toEqual({
      kind: "skip",
      tick: T0 + 200,
    });
    expect(planTick(cron, rec(T0 + 200, "skipped"), T0 + 300, GRACE, false)).toEqual({
      kind: "wait",
      until: T0 + 60_000,
    });
    const once = parseEntry({ name: "o", task: "t", at: T0 + 5_000 });
    expect(planTick(once, undefined, T0, GRACE, false)).toEqual({
      kind: "wait",
      until: T0 + 5_000,
    });
    expect(planTick(once, undefined, T0 + 5_000, GRACE, false)).toEqual({
      kind: "send",
      tick: T0 + 5_000,
    });
    expect(planTick(once, rec(T0 + 5_000), T0 + 9_000, GRACE, false)).toEqual({
      kind: "wait",
      until: undefined,
    });
    const skipped = parseEntry({ name: "o", task: "t", at: T0 - 3_600_000, catchUp: "skip" });
    expect(planTick(skipped, undefined, T0, GRACE, false)).toEqual({
      kind: "skip",
      tick: T0 - 3_600_000,
    });
  });

  it("delays each tick by a jitter every instance computes alike, within the bound", () => {
    const jittered = every({ jitter: 0.5 });
    const delays = Array.from({ length: 200 }, (_, i) => jitterMs("e", T0 + i * 1000, 0.5));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(500);
    expect(new Set(delays).size).toBeGreaterThan(50);
    const delay = jitterMs("e", T0 + 1000, 0.5);
    expect(planTick(jittered, rec(T0), T0 + 1000 + delay - 1, GRACE, false)).toEqual({
      kind: "wait",
      until: T0 + 1000 + delay,
    });
    expect(planTick(jittered, rec(T0), T0 + 1000 + delay, GRACE, false)).toEqual({
      kind: "send",
      tick: T0 + 1000,
    });
  });

  it("names each tick's task with a UUID that depends on namespace, entry and tick only", () => {
    const id = tickTaskId("ns", "e", T0);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(tickTaskId("ns", "e", T0)).toBe(id);
    expect(
      new Set([
        id,
        tickTaskId("ns", "e", T0 + 1),
        tickTaskId("ns2", "e", T0),
        tickTaskId("ns", "f", T0),
      ]).size,
    ).toBe(4);
  });
});
