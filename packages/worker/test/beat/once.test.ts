// The claim a two-step beat puts on each tick's message (`celery_ts_once`): a celery-ts worker
// with a coordination store runs one copy of a tick; without a store it runs every copy and
// warns once.
import { randomUUID } from "node:crypto";
import {
  MemoryBroker,
  MemoryStoreSpace,
  createMemoryStore,
  createMemoryTransport,
  createTaskMessage,
  currentTask,
  defineTask,
  encodeTaskMessage,
  type CoordinationStore,
} from "@celery-ts/core";
import { captureLogger } from "@celery-ts/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker, type Worker } from "../../src/index.ts";
import { ONCE_HEADER, onceHeader } from "../../src/beat/once.ts";

vi.setConfig({ testTimeout: 20_000 });

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const workers: Worker[] = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop();
});

/** A worker on a memory broker counting the runs of `beat.tick` by task id. */
async function setup(store: CoordinationStore | undefined) {
  const broker = new MemoryBroker();
  const queue = `once-${randomUUID()}`;
  const runs = new Map<string, number>();
  const tick = defineTask("beat.tick", () => {
    const { id } = currentTask();
    runs.set(id, (runs.get(id) ?? 0) + 1);
  });
  const logger = captureLogger();
  const { lines } = logger;
  const worker = createWorker({
    broker: createMemoryTransport({ broker }),
    ...(store && { store }),
    tasks: [tick],
    queues: [queue],
    concurrency: 1,
    logger,
  });
  workers.push(worker);
  await worker.start();
  const producer = createMemoryTransport({ broker });
  const send = async (id: string, headers: Record<string, unknown>): Promise<void> => {
    const message = createTaskMessage({ task: "beat.tick", id, headers });
    await producer.publish(encodeTaskMessage(message), { queue });
  };
  const settled = (): number =>
    lines.filter((l) => l.message === "task succeeded" || l.message.startsWith("beat tick already"))
      .length;
  return { runs, lines, send, settled };
}

describe("a tick's claim on celery-ts workers", () => {
  it("with a store: one copy runs, another is acknowledged; the same copy again runs", async () => {
    const store = createMemoryStore({ space: new MemoryStoreSpace() });
    const { runs, lines, send, settled } = await setup(store);
    const id = randomUUID();
    const first = onceHeader(id, undefined);
    await send(id, first);
    await send(id, onceHeader(id, undefined)); // the copy a new leader sent again
    await until(() => settled() === 2, "both copies settled");
    expect(runs.get(id)).toBe(1);
    expect(lines.filter((l) => l.message.startsWith("beat tick already claimed"))).toMatchObject([
      { level: "info", fields: { id, claim: id } },
    ]);
    // The claim names the copy that ran, and lasts the header's ttl (an hour by default).
    expect(await store.get(`once:${id}`)).toBe(first[ONCE_HEADER]!.copy);
    expect(await store.ttl(`once:${id}`)).toBeGreaterThan(3500);
    // The same copy delivered again (a worker died running it, or it was retried) runs.
    await send(id, first);
    await until(() => settled() === 3, "the same copy settled");
    expect(runs.get(id)).toBe(2);
    // Other ticks, and messages without the header, run as usual.
    const other = randomUUID();
    await send(other, onceHeader(other, undefined));
    await send(other, {});
    await until(() => settled() === 5, "the others settled");
    expect(runs.get(other)).toBe(2);
  });

  it("without a store: every copy runs, and the worker warns once", async () => {
    const { runs, lines, send, settled } = await setup(undefined);
    const ids = [randomUUID(), randomUUID()];
    for (const id of ids) {
      await send(id, onceHeader(id, undefined));
      await send(id, onceHeader(id, undefined));
    }
    await until(() => settled() === 4, "every copy settled");
    expect(ids.map((id) => runs.get(id))).toEqual([2, 2]);
    const warnings = lines.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/beat ticks on this broker may run twice.*--store/);
  });

  it("the claim lasts the entry's expires longer", () => {
    expect(onceHeader("x", 600)[ONCE_HEADER]).toMatchObject({ key: "x", ttl: 4200 });
  });
});
