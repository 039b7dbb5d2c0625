import { expect, it } from "vitest";
import { FleetState } from "../src/fleet-state.ts";
import { parsePythonLiteral } from "../src/internal/python-literal.ts";

const ev = (type: string, fields: Record<string, unknown> = {}) => ({
  type,
  hostname: "w1@h",
  timestamp: 1000,
  ...fields,
});

it("builds tasks from events, keeps final states, bounds its window", () => {
  const state = new FleetState({ maxTasks: 3 });
  state.add(
    ev("task-received", { uuid: "a", name: "t.add", args: "(1, 2)", kwargs: "{}", parent_id: "p" }),
  );
  state.add(ev("task-started", { uuid: "a", timestamp: 1001 }));
  state.add(ev("task-succeeded", { uuid: "a", result: "3", runtime: 0.5, timestamp: 1002 }));
  state.add(ev("task-started", { uuid: "a", timestamp: 1001.5 })); // late, out of order
  expect(state.tasks.get("a")).toMatchObject({
    name: "t.add",
    state: "SUCCESS",
    result: "3",
    runtime: 0.5,
    parentId: "p",
  });
  expect(state.runtimes.percentiles()).toEqual([
    { name: "t.add", count: 1, p50: 0.5, p90: 0.5, p99: 0.5, max: 0.5 },
  ]);
  for (const id of ["b", "c", "d"]) state.add(ev("task-received", { uuid: id, name: "t.x" }));
  expect([...state.tasks.keys()]).toEqual(["b", "c", "d"]);
  expect(state.search({ q: "t.x", limit: 2 })).toHaveLength(2);
  expect(state.search({ state: "SUCCESS" })).toHaveLength(0);
});

it("tracks workers: online, lost after missed heartbeats, offline", () => {
  const state = new FleetState();
  state.add(
    ev("worker-heartbeat", {
      freq: 2,
      active: 1,
      processed: 7,
      loadavg: [0.1, 0.2, 0.3],
      sw_ident: "py-celery",
      sw_ver: "5.2.6",
    }),
  );
  const w = state.workers.get("w1@h")!;
  expect(w).toMatchObject({ active: 1, processed: 7, software: "py-celery 5.2.6" });
  expect(state.alive(w, 1005)).toBe(true);
  expect(state.alive(w, 1007)).toBe(false);
  state.add(ev("worker-offline", { timestamp: 1001 }));
  expect(state.alive(w, 1001)).toBe(false);
});

it("reads Python literals back, and refuses anything else", () => {
  expect(parsePythonLiteral("(1, 'a\\'b', [None, True, False], {'k': -2.5})")).toEqual([
    1,
    "a'b",
    [null, true, false],
    { k: -2.5 },
  ]);
  expect(parsePythonLiteral("('x',)")).toEqual(["x"]);
  expect(() => parsePythonLiteral("(<object at 0x1>,)")).toThrow(/not a Python literal/);
  expect(() => parsePythonLiteral("('abc...")).toThrow(/unterminated/);
});
