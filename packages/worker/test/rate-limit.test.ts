import { defineTask, isCeleryTsError } from "@celery-ts/core";
import { waitAbsenceWindow } from "@celery-ts/testing";
import { describe, expect, it } from "vitest";
import { createTaskMessage } from "@celery-ts/core";
import { fleetWindow, groupOf, parseRate } from "../src/flow/rate.ts";
import { Fixture, setups, sleep, useWorkers } from "./harness.ts";

describe("parseRate", () => {
  it.each([
    ["10/s", { limit: 10, periodMs: 1_000 }],
    ["100/m", { limit: 100, periodMs: 60_000 }],
    ["1000/h", { limit: 1000, periodMs: 3_600_000 }],
    ["2.5", { limit: 2.5, periodMs: 1_000 }],
    [7, { limit: 7, periodMs: 1_000 }],
  ])("reads %j as Celery does", (rate, parsed) => {
    expect(parseRate(rate, "t")).toEqual(parsed);
  });

  it.each([0, "0", null])("takes %j as no limit", (rate) => {
    expect(parseRate(rate, "t")).toBeUndefined();
  });

  it.each(["10/d", "fast", "-1/s", -3, Number.NaN])(
    "refuses %j with the forms it takes",
    (rate) => {
      let error: unknown;
      try {
        parseRate(rate, "t.x");
      } catch (e) {
        error = e;
      }
      expect(isCeleryTsError(error, "CONFIG")).toBe(true);
      expect((error as Error).message).toMatch(/task t\.x: rate limit .* write "10\/s", "100\/m"/);
    },
  );

  it("counts fast fleet rates per period and slow ones per run", () => {
    expect(fleetWindow({ limit: 100, periodMs: 1_000 })).toEqual({
      windowMs: 1_000,
      allowance: 100,
    });
    expect(fleetWindow({ limit: 10, periodMs: 1_000 })).toEqual({ windowMs: 100, allowance: 1 });
    expect(fleetWindow({ limit: 1000, periodMs: 3_600_000 })).toEqual({
      windowMs: 3_600,
      allowance: 1,
    });
  });
});

describe("groupOf", () => {
  const message = createTaskMessage({
    task: "t",
    args: ["acme", 2],
    kwargs: { region: "eu" },
    headers: { tenant: 42 },
  });
  it.each([
    [{ arg: 0 }, "acme"],
    [{ kwarg: "region" }, "eu"],
    [{ header: "tenant" }, "42"],
    [({ args }: { args: readonly unknown[] }) => `n${String(args[1])}`, "n2"],
    [{ arg: 5 }, ""],
    [undefined, ""],
  ])("keys a message by %j", (groupBy, key) => {
    expect(groupOf(message, groupBy)).toBe(key);
  });
});

describe.each(setups)("per-worker rate limits on $name", ({ create }) => {
  const workers = useWorkers(create);
  const { start } = workers;

  it("spaces the runs of a task evenly: 10/s is one run per 100 ms", async () => {
    const startedAt: number[] = [];
    const task = defineTask("rl.spaced", () => void startedAt.push(performance.now()), {
      rateLimit: "10/s",
    });
    const f = await start([task]);
    const sent = performance.now();
    const ids = await Promise.all(Array.from({ length: 5 }, () => f.send({ task: "rl.spaced" })));
    await Promise.all(ids.map((id) => f.wait(id)));
    // Released 100 ms apart from the first: run n never starts before n × 100 ms after the sends
    // (a loaded machine only makes a start later; 5 ms for timer granularity).
    expect(startedAt).toHaveLength(5);
    startedAt.forEach((at, n) => expect(at - sent).toBeGreaterThanOrEqual(n * 100 - 5));
  });

  it("a waiting task holds no concurrency slot, stays unacknowledged, and uses no CPU while it waits", async () => {
    const limited = defineTask("rl.slow", (n: number) => n, { rateLimit: "1/m" });
    const free = defineTask("rl.free", () => "ran");
    const f = await start([limited, free], { concurrency: 1 });
    const first = await f.send({ task: "rl.slow", args: [1] });
    await f.wait(first);
    const second = await f.send({ task: "rl.slow", args: [2] });
    // The only slot is free: the unlimited task runs while the second one waits its minute.
    expect((await f.wait(await f.send({ task: "rl.free" }))).result).toBe("ran");
    const cpu = process.cpuUsage();
    await sleep(500);
    const used = process.cpuUsage(cpu);
    // A timer, not a polling loop: the half second of waiting costs next to no CPU.
    expect((used.user + used.system) / 1000).toBeLessThan(100);
    expect((await workers.setup().backend.get(second))?.status ?? "PENDING").toBe("PENDING");
    // Unacknowledged: stopped, the worker gives it back, and the next worker runs it.
    await f.worker.stop();
    const next = await start([defineTask("rl.slow", (n: number) => n * 10)]);
    expect((await next.wait(second)).result).toBe(20);
  });

  it("changes a task's rate at run time (the rate_limit control command)", async () => {
    const task = defineTask("rl.change", (n: number) => n, { rateLimit: "1/m" });
    const f = await start([task]);
    const ids = [];
    for (let n = 0; n < 3; n++) ids.push(await f.send({ task: "rl.change", args: [n] }));
    await f.wait(ids[0]!);
    expect(() => f.worker.setRateLimit("rl.change", "often")).toThrow(/not a rate/);
    expect(() => f.worker.setRateLimit("rl.other", "1/s")).toThrow(
      /cannot set the rate limit of "rl.other": this worker registers rl.change/,
    );
    f.worker.setRateLimit("rl.change", "50/s");
    const metas = await Promise.all(ids.map((id) => f.wait(id, 5_000)));
    expect(metas.map((m) => m.result)).toEqual([0, 1, 2]);
  });

  it("limits each group on its own: groupBy a positional argument", async () => {
    const task = defineTask("rl.group", (customer: string) => customer, {
      rateLimit: { rate: "1/m", groupBy: { arg: 0 } },
    });
    const f = await start([task]);
    const a1 = await f.send({ task: "rl.group", args: ["a"] });
    const b1 = await f.send({ task: "rl.group", args: ["b"] });
    const a2 = await f.send({ task: "rl.group", args: ["a"] });
    await f.wait(a1);
    await f.wait(b1);
    await waitAbsenceWindow(f.producer); // a declared window: a2 waits out its group's minute
    expect((await workers.setup().backend.get(a2))?.status ?? "PENDING").toBe("PENDING");
  });

  it("a fleet-wide limit holds across workers sharing the store", async () => {
    const runs: string[] = [];
    const task = defineTask("rl.fleet", (n: number) => void runs.push(`run ${n}`), {
      rateLimit: { rate: "1/h", scope: "fleet" },
    });
    const one = await start([task], { store: workers.setup().store(), hostname: "one" });
    const two = await start([task], { store: workers.setup().store(), hostname: "two" });
    const ids = [];
    for (let n = 0; n < 4; n++) ids.push(await one.send({ task: "rl.fleet", args: [n] }));
    await expect.poll(() => runs.length, { timeout: 5_000 }).toBe(1);
    await waitAbsenceWindow(one.producer); // a declared window: no second run in the same hour
    expect(runs).toHaveLength(1);
    one.worker.setRateLimit("rl.fleet", null);
    two.worker.setRateLimit("rl.fleet", null);
    await Promise.all(ids.map((id) => one.wait(id)));
    expect(runs).toHaveLength(4);
  });

  it("needs a store for a fleet-wide limit when the broker is an object", async () => {
    const task = defineTask("rl.nostore", () => null, {
      rateLimit: { rate: "1/s", scope: "fleet" },
    });
    const f = new Fixture(workers.setup(), [task]);
    await expect(f.worker.start()).rejects.toThrow(
      /task rl.nostore has a fleet-wide rate limit, which counts in a coordination store: give the worker a store option/,
    );
  });

  it("refuses a bad rate when the worker is created", () => {
    const task = defineTask("rl.bad", () => null, { rateLimit: "10 per second" });
    expect(() => new Fixture(workers.setup(), [task])).toThrow(
      /rate limit "10 per second" is not a rate/,
    );
  });
});
