import { defineTask, type ResultBackend } from "@celery-ts/core";
import { absenceMs } from "@celery-ts/testing";
import { describe, expect, it } from "vitest";
import { defaultPrefetch } from "../src/setup/options.ts";
import { setups, useWorkers } from "./harness.ts";

const memory = setups.find((setup) => setup.name === "memory")!;

/** Holds the store of `id`'s result until `release()`; other stores go through. */
function holdStoreOf(backend: ResultBackend): {
  hold(id: string): void;
  held: Promise<void>;
  release(): void;
} {
  let heldId: string | undefined;
  let release!: () => void;
  let reached!: () => void;
  const held = new Promise<void>((resolve) => (reached = resolve));
  const gate = new Promise<void>((resolve) => (release = resolve));
  const store = backend.store.bind(backend);
  backend.store = async (taskId, meta, options) => {
    if (taskId === heldId) {
      reached();
      await gate;
    }
    return store(taskId, meta, options);
  };
  return { hold: (id) => (heldId = id), held, release };
}

describe("concurrency slots", () => {
  const workers = useWorkers(() => memory.create());

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
    const { backend } = workers.setup();
    const store = holdStoreOf(backend);
    const fixture = await workers.start([task], { concurrency: 1 });
    const first = await fixture.send({ task: task.name, args: [1] });
    store.hold(first);
    await store.held;
    // The first result is not stored yet, and its message not acknowledged: the slot is free.
    const second = await fixture.send({ task: task.name, args: [2] });
    expect((await fixture.wait(second)).result).toBe(2);
    expect(await backend.get(first)).toBeUndefined();
    store.release();
    expect((await fixture.wait(first)).result).toBe(1);
    expect(most).toBe(1);
  });

  it("stops at the prefetch: with prefetch 1 the next task waits for the last to be settled", async () => {
    const task = defineTask("slots.one", (n: number) => n);
    const { backend } = workers.setup();
    const store = holdStoreOf(backend);
    const fixture = await workers.start([task], { concurrency: 1, prefetch: 1 });
    const first = await fixture.send({ task: task.name, args: [1] });
    store.hold(first);
    await store.held;
    const second = await fixture.send({ task: task.name, args: [2] });
    // The second message stays on the broker while the first counts against the prefetch.
    await expect(fixture.wait(second, absenceMs(fixture.producer))).rejects.toThrow(
      /no result for task/,
    );
    store.release();
    expect((await fixture.wait(first)).result).toBe(1);
    expect((await fixture.wait(second)).result).toBe(2);
  });

  it("stop() waits for a result still being stored after its slot was freed", async () => {
    const task = defineTask("slots.stop", (n: number) => n);
    const { backend } = workers.setup();
    const store = holdStoreOf(backend);
    const fixture = await workers.start([task], { concurrency: 1 });
    const id = await fixture.send({ task: task.name, args: [7] });
    store.hold(id);
    await store.held;
    let stopped = false;
    const stopping = fixture.worker.stop().then(() => (stopped = true));
    const window = new Promise((resolve) => setTimeout(resolve, absenceMs(fixture.producer)));
    await Promise.race([stopping, window]);
    expect(stopped).toBe(false);
    store.release();
    await stopping;
    expect((await backend.get(id))?.result).toBe(7);
  });
});
