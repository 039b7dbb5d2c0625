import { defineTask } from "@celery-ts/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createWorker } from "../src/index.ts";
import { Fixture, setups, type Setup } from "./harness.ts";

describe.each(setups)("a retiring worker on $name", ({ create }) => {
  let setup: Setup;
  const fixtures: Fixture[] = [];
  beforeEach(async () => {
    setup = await create();
  });
  afterEach(async () => {
    await Promise.all(fixtures.splice(0).map((f) => f.worker.stop()));
    await setup.close();
  });

  it("starts maxTasksPerChild tasks, finishes them, returns the rest and stops", async () => {
    const runs: number[] = [];
    const task = defineTask("r.task", async (i: number) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      runs.push(i);
      return i;
    });
    const retired: unknown[] = [];
    const f = new Fixture(setup, [task], {
      concurrency: 2,
      prefetch: 4,
      maxTasksPerChild: 3,
      onRetire: (info) => retired.push(info),
    });
    fixtures.push(f);
    const ids = [];
    for (let i = 0; i < 8; i++) ids.push(await f.send({ task: "r.task", args: [i] }));
    await f.worker.start();
    await f.worker.stopped;
    expect(runs).toHaveLength(3);
    expect(retired).toEqual([expect.objectContaining({ reason: "max-tasks", tasks: 3 })]);

    // The messages it took ahead went back: a second worker runs the other five, once each.
    const next = new Fixture(setup, [task]);
    fixtures.push(next);
    await next.worker.start();
    await Promise.all(ids.map((id) => next.wait(id)));
    expect([...runs].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("refuses a limit that is not a whole number of 1 or more", () => {
    expect(() =>
      createWorker({ broker: setup.transport(), tasks: [], maxMemoryPerChild: 0.5 }),
    ).toThrow(/maxMemoryPerChild takes a whole number of 1 or more, not 0.5/);
  });
});
