import { randomUUID } from "node:crypto";
import {
  createMemoryTransport,
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  type CoordinationStore,
  type Transport,
} from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";

export interface AtomicPublishHarness {
  /** A new store and a new transport on one server and database (or file), this run's own. */
  pair(): { store: CoordinationStore; transport: Transport };
  /** A transport of the same package on another database (or file): it must get no publisher. */
  elsewhere(): Transport;
  /**
   * Makes the broker refuse a message for `queue` of the pair's server (Redis: the queue's list
   * key holds a string, so LPUSH fails; SQL: a trigger raising on insert into the messages
   * table); resolves to the undo. Without it, the "publish fails" case is skipped.
   */
  refusePublish?(queue: string): Promise<() => Promise<void>>;
}

type Closable = { close(): Promise<void> };

/** A store and transport pair of one test, with its own queue and keys, closed after it. */
async function setUp(name: string, harness: AtomicPublishHarness, open: Closable[]) {
  const { store, transport } = harness.pair();
  open.push(store, transport);
  await Promise.all([store.connect(), transport.connect()]);
  const publisher = store.atomicPublisher?.(transport);
  if (!publisher) throw new Error(`${name}: the store offers no atomic publisher`);
  const queue = `atomic-${randomUUID()}`;
  const key = `suite:${randomUUID()}:record`;
  const fenceKey = `suite:${randomUUID()}:fence`;
  const message = (id: string) =>
    encodeTaskMessage(createTaskMessage({ task: "suite.tick", id, args: [], kwargs: {} }));
  return { store, transport, publisher, queue, key, fenceKey, message };
}

/** The ids of the messages on `queue`, read by a consumer (a bounded wait for `n`). */
async function take(transport: Transport, queue: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  const abort = new AbortController();
  let done!: () => void;
  const enough = new Promise<void>((resolve) => (done = resolve));
  const timer = setTimeout(done, 10_000);
  const consuming = transport.consume(
    [queue],
    (delivery) => {
      if (delivery.message) ids.push(decodeTaskMessage(delivery.message).headers.id);
      void delivery.ack();
      if (ids.length >= n) done();
    },
    { prefetch: 10, signal: abort.signal },
  );
  await enough;
  clearTimeout(timer);
  abort.abort();
  await consuming;
  return ids;
}

/**
 * The contract of `CoordinationStore.atomicPublisher()`, for a store that offers it: a message
 * published as the transport publishes it, and a fenced compare-and-set of a store key, in one
 * step: both, or neither.
 */
export function atomicPublishConformance(name: string, harness: AtomicPublishHarness): void {
  describe(`atomic publish and record: ${name}`, () => {
    const open: Closable[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });
    const pair = () => setUp(name, harness, open);
    togetherTests(pair);
    neitherTests(pair);
    const refuse = harness.refusePublish?.bind(harness);
    it.skipIf(!refuse)(
      "writes neither when the publish fails: rejects, the record unchanged",
      async () => {
        const { store, transport, publisher, queue, key, fenceKey, message } = await pair();
        const fence = { key: fenceKey, token: await store.increment(fenceKey) };
        expect(await store.setIfAbsent(key, "before")).toBe(true);
        const undo = await refuse!(queue);
        try {
          const record = { key, expected: "before", value: "after", fence };
          await expect(
            publisher.publishIfSet(message("refused"), { queue }, record),
          ).rejects.toThrow();
          expect(await store.get(key)).toBe("before");
        } finally {
          await undo();
        }
        expect(await transport.purge(queue)).toBe(0);
        // Once the broker takes it again, the same step goes through.
        const record = { key, expected: "before", value: "after", fence };
        expect(await publisher.publishIfSet(message("taken"), { queue }, record)).toBe(true);
        expect(await store.get(key)).toBe("after");
      },
    );

    it("offers no publisher for a transport elsewhere, or of another kind", async () => {
      const { store } = harness.pair();
      const elsewhere = harness.elsewhere();
      open.push(store, elsewhere);
      expect(store.atomicPublisher?.(elsewhere)).toBeUndefined();
      expect(store.atomicPublisher?.(createMemoryTransport())).toBeUndefined();
    });
  });
}

type Pair = () => ReturnType<typeof setUp>;

function togetherTests(pair: Pair): void {
  it("publishes the message and writes the record together, readable by a consumer", async () => {
    const { store, transport, publisher, queue, key, fenceKey, message } = await pair();
    const token = await store.increment(fenceKey);
    const fence = { key: fenceKey, token };
    const record = { key, expected: undefined, value: "tick-1", fence };
    expect(await publisher.publishIfSet(message("id-1"), { queue }, record)).toBe(true);
    expect(await store.get(key)).toBe("tick-1");
    const next = { key, expected: "tick-1", value: "tick-2", fence };
    expect(await publisher.publishIfSet(message("id-2"), { queue }, next)).toBe(true);
    expect(await store.get(key)).toBe("tick-2");
    expect(await take(transport, queue, 2)).toEqual(["id-1", "id-2"]);
  });
}

function neitherTests(pair: Pair): void {
  it("writes neither when the fence moved on (a newer holder)", async () => {
    const { store, transport, publisher, queue, key, fenceKey, message } = await pair();
    const stale = await store.increment(fenceKey);
    await store.increment(fenceKey);
    const fence = { key: fenceKey, token: stale };
    const record = { key, expected: undefined, value: "late", fence };
    expect(await publisher.publishIfSet(message("late"), { queue }, record)).toBe(false);
    // Both are read after the step returned: nothing is on its way.
    expect(await store.get(key)).toBeUndefined();
    expect(await transport.purge(queue)).toBe(0);
  });

  it("writes neither when the record is not the expected one", async () => {
    const { store, transport, publisher, queue, key, message } = await pair();
    expect(await store.setIfAbsent(key, "moved on")).toBe(true);
    const stale = { key, expected: "read before", value: "mine" };
    expect(await publisher.publishIfSet(message("stale"), { queue }, stale)).toBe(false);
    const absent = { key, expected: undefined, value: "mine" };
    expect(await publisher.publishIfSet(message("absent"), { queue }, absent)).toBe(false);
    expect(await store.get(key)).toBe("moved on");
    expect(await transport.purge(queue)).toBe(0);
  });
}
