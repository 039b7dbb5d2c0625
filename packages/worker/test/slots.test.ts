import { defineTask, type AnyTaskDefinition, type ResultBackend } from "@celery-ts/core";
import { absenceMs, waitAbsenceWindow } from "@celery-ts/testing";
import { describe, expect, it } from "vitest";
import { defaultPrefetch } from "../src/setup/options.ts";
import type { WorkerOptions } from "../src/index.ts";
import { setups, useWorkers, type Fixture } from "./harness.ts";

const memory = setups.find((setup) => setup.name === "memory")!;

/**
 * Holds the first result the backend is asked to store until `release()`; later stores go
 * through. `held` resolves with that task's id once its store is waiting.
 */
function holdFirstStore(backend: ResultBackend): { held: Promise<string>; release(): void } {
  let holding = false;
  let release!: () => void;
  let reached!: (id: string) => void;
  const held = new Promise<string>((resolve) => (reached = resolve));
  const gate = new Promise<void>((resolve) => (release = resolve));
  const store = backend.store.bind(backend);
  backend.store = async (taskId, meta, options) => {
    if (!holding) {
      holding = true;
      reached(taskId);
      await gate;
    }
    return store(taskId, meta, options);
  };
  return { held, release };
}

describe("concurrency slots", () => {
  const workers = useWorkers(() => memory.create());

  /** A worker running `task`, whose first result (of the task sent with `arg`) is held. */
  async function startHoldingFirst(
    task: AnyTaskDefinition,
    options: Partial<WorkerOptions>,
    arg: number,
  ): Promise<{ fixture: Fixture; backend: ResultBackend; first: string; release(): void }> {
    const { backend } = workers.setup();
    const store = holdFirstStore(backend);
    const fixture = await workers.start([task], options);
    const first = await fixture.send({ task: task.name, args: [arg] });
    expect(await store.held).toBe(first);
    return { fixture, backend, first, release: store.release };
  }

  it("takes a quarter more than the concurrency ahead by default, at least 4", () => {
    expect([1, 2, 4, 10, 50].map(defaultPrefetch)).toEqual([5, 6, 8, 14, 63]);
  });

  it("at concurrency 1, runs the next task while the last result is stored, one at a time", async () => {
    let running = 0;
    let most = 0;
    const task = defineTask("slots.step", async (n: number) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      return n;
    });
    const { fixture, backend, first, release } = await startHoldingFirst(
      task,
      { concurrency: 1 },
      1,
    );
    // The first result is not stored yet, and its message not acknowledged: the slot is free.
    const second = await fixture.send({ task: task.name, args: [2] });
    expect((await fixture.wait(second)).result).toBe(2);
    expect(await backend.get(first)).toBeUndefined();
    release();
    expect((await fixture.wait(first)).result).toBe(1);
    expect(most).toBe(1);
  });

  it("stops at the prefetch: with prefetch 1 the next task waits for the last to be settled", async () => {
    const task = defineTask("slots.one", (n: number) => n);
    const { fixture, first, release } = await startHoldingFirst(
      task,
      { concurrency: 1, prefetch: 1 },
      1,
    );
    const second = await fixture.send({ task: task.name, args: [2] });
    // The second message stays on the broker while the first counts against the prefetch.
    await expect(fixture.wait(second, absenceMs(fixture.producer))).rejects.toThrow(
      /no result for task/,
    );
    release();
    expect((await fixture.wait(first)).result).toBe(1);
    expect((await fixture.wait(second)).result).toBe(2);
  });

  it("stop() waits for a result still being stored after its slot was freed", async () => {
    const task = defineTask("slots.stop", (n: number) => n);
    const { fixture, backend, first, release } = await startHoldingFirst(
      task,
      { concurrency: 1 },
      7,
    );
    let stopped = false;
    const stopping = fixture.worker.stop().then(() => (stopped = true));
    await Promise.race([stopping, waitAbsenceWindow(fixture.producer)]);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect((await backend.get(first))?.result).toBe(7);
  });
});
