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
import { registerDriver } from "@celery-ts/core/driver";
import { captureLogger, waitUntil } from "@celery-ts/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker, type Worker } from "../../src/index.ts";
import { ONCE_HEADER, onceHeader } from "../../src/beat/once.ts";

vi.setConfig({ testTimeout: 20_000 });

const until = (check: () => boolean, what: string): Promise<true> =>
  waitUntil(check, { timeoutMs: 10_000, what });

const workers: Worker[] = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop();
});

/** A worker on a memory broker counting the runs of `beat.tick` by task id. */
async function setup(store: CoordinationStore | string | undefined, shutdownTimeout?: number) {
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
    ...(shutdownTimeout !== undefined && { shutdownTimeout }),
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
  return { runs, lines, send, settled, worker };
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

  describe("a store the worker opens for the claims (from a URL)", () => {
    /** Stores built from once-fake:// URLs: connect waits for `release`, or fails. */
    const fake = { connects: 0, closes: 0, fail: false, release: () => {} };
    registerDriver({
      pkg: "once-test",
      schemes: ["once-fake"],
      createStoreFromUrl() {
        const inner = createMemoryStore({ space: new MemoryStoreSpace() });
        const gate = new Promise<void>((resolve) => (fake.release = resolve));
        return new Proxy(inner, {
          get(target, prop) {
            if (prop === "connect") {
              return async () => {
                fake.connects++;
                await gate;
                if (fake.fail) throw new Error("the store is down");
                await target.connect();
              };
            }
            if (prop === "close") {
              return async () => {
                fake.closes++;
                await target.close();
              };
            }
            const value = target[prop as keyof CoordinationStore];
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
      },
    });
    afterEach(() => {
      Object.assign(fake, { connects: 0, closes: 0, fail: false });
    });

    it("is closed when it connects after the worker stopped, not kept open", async () => {
      const { send, worker } = await setup("once-fake://late", 0.05);
      const id = randomUUID();
      await send(id, onceHeader(id, undefined));
      await until(() => fake.connects === 1, "the store connecting");
      await worker.stop(); // gives up on the tick claiming (its grace is short)
      expect(fake.closes).toBe(0);
      fake.release();
      await until(() => fake.closes === 1, "the store closed");
    });

    it("is closed when it fails to connect; the tick runs anyway", async () => {
      fake.fail = true;
      const { runs, lines, send } = await setup("once-fake://down");
      const id = randomUUID();
      await send(id, onceHeader(id, undefined));
      await until(() => fake.connects === 1, "the store connecting");
      fake.release();
      await until(() => runs.get(id) === 1, "the tick run");
      expect(fake.closes).toBe(1);
      expect(lines.some((l) => l.message.startsWith("could not claim a beat tick"))).toBe(true);
    });
  });
});
