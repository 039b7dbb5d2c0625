import { randomUUID } from "node:crypto";
import { isCeleryTsError, type CoordinationStore } from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";

export interface StoreHarness {
  /** A new connection to the same store (server or file), with this test run's own prefix. */
  create(): CoordinationStore | Promise<CoordinationStore>;
}

/**
 * Waits until `check` holds, polling, at most `withinMs`: expiry is judged by the store's clock,
 * so a test waits for it to be seen rather than sleeping a fixed time.
 */
async function eventually(check: () => Promise<boolean>, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface StoreSuite {
  harness: StoreHarness;
  connect(): Promise<CoordinationStore>;
  key(label: string): string;
}

/** The connections of one test, closed after it (call inside the describe). */
function storeSuite(harness: StoreHarness): StoreSuite {
  const open: CoordinationStore[] = [];
  const connect = async (): Promise<CoordinationStore> => {
    const store = await harness.create();
    open.push(store);
    await store.connect();
    return store;
  };
  const key = (label: string): string => `suite:${randomUUID()}:${label}`;

  afterEach(async () => {
    await Promise.all(open.splice(0).map((store) => store.close()));
  });
  return { harness, connect, key };
}

/** The behaviour every coordination store must have. */
export function storeConformance(name: string, harness: StoreHarness): void {
  describe(`CoordinationStore conformance: ${name}`, () => {
    const suite = storeSuite(harness);
    keyTests(suite);
    ttlTests(suite);
    listAndCounterTests(suite);
  });
}

function keyTests({ connect, key }: StoreSuite): void {
  it("sets a key only when absent, seen from another connection", async () => {
    const [a, b] = [await connect(), await connect()];
    const k = key("lease");
    expect(await a.get(k)).toBeUndefined();
    expect(await a.setIfAbsent(k, "a")).toBe(true);
    expect(await b.setIfAbsent(k, "b")).toBe(false);
    expect(await b.get(k)).toBe("a");
  });

  it("expires a key after its ttl, and then lets it be set again", async () => {
    const store = await connect();
    const k = key("ttl");
    expect(await store.setIfAbsent(k, "first", { ttl: 0.2 })).toBe(true);
    expect(await store.get(k)).toBe("first");
    expect(await eventually(async () => (await store.get(k)) === undefined, 2_000)).toBe(true);
    expect(await store.setIfAbsent(k, "second")).toBe(true);
    expect(await store.get(k)).toBe("second");
  });

  it("compares and sets: only from the expected value, or from absent", async () => {
    const [a, b] = [await connect(), await connect()];
    const k = key("cas");
    expect(await a.compareAndSet(k, "x", "y")).toBe(false);
    expect(await a.get(k)).toBeUndefined();
    expect(await a.compareAndSet(k, undefined, "v1")).toBe(true);
    expect(await b.compareAndSet(k, undefined, "other")).toBe(false);
    expect(await b.compareAndSet(k, "v1", "v2")).toBe(true);
    expect(await a.compareAndSet(k, "v1", "v3")).toBe(false);
    expect(await a.get(k)).toBe("v2");
  });

  it("replaces the expiry on compareAndSet: a renewed lease lives on, a plain set never expires", async () => {
    const store = await connect();
    const k = key("renew");
    await store.setIfAbsent(k, "lease", { ttl: 0.3 });
    expect(await store.compareAndSet(k, "lease", "lease", { ttl: 30 })).toBe(true);
    const other = key("plain");
    await store.setIfAbsent(other, "short", { ttl: 0.3 });
    expect(await store.compareAndSet(other, "short", "kept")).toBe(true);
    // Past the first ttl both are still there: one renewed, one without expiry.
    const stale = key("stale");
    await store.setIfAbsent(stale, "gone", { ttl: 0.3 });
    expect(await eventually(async () => (await store.get(stale)) === undefined, 2_000)).toBe(true);
    expect(await store.get(k)).toBe("lease");
    expect(await store.get(other)).toBe("kept");
  });

  it("refuses a fenced write once the fence counter has moved on", async () => {
    const [old, next] = [await connect(), await connect()];
    const fence = key("fence");
    const k = key("record");
    const oldToken = await old.increment(fence);
    expect(
      await old.compareAndSet(k, undefined, "by-old", { fence: { key: fence, token: oldToken } }),
    ).toBe(true);
    const newToken = await next.increment(fence);
    expect(newToken).toBe(oldToken + 1);
    expect(
      await old.compareAndSet(k, "by-old", "late", { fence: { key: fence, token: oldToken } }),
    ).toBe(false);
    expect(
      await next.compareAndSet(k, "by-old", "by-new", { fence: { key: fence, token: newToken } }),
    ).toBe(true);
    expect(await old.get(k)).toBe("by-new");
    // A fence on a counter that does not exist holds only token 0.
    const none = key("no-counter");
    expect(await old.compareAndSet(k, "by-new", "x", { fence: { key: none, token: 1 } })).toBe(
      false,
    );
    expect(await old.compareAndSet(k, "by-new", "y", { fence: { key: none, token: 0 } })).toBe(
      true,
    );
  });
}

function ttlTests({ connect, key }: StoreSuite): void {
  it("tells how long a key has to live: its ttl, Infinity without one, undefined when absent", async () => {
    const [a, b] = [await connect(), await connect()];
    const k = key("remaining");
    expect(await b.ttl(k)).toBeUndefined();
    await a.setIfAbsent(k, "lease", { ttl: 30 });
    const left = await b.ttl(k);
    expect(left).toBeGreaterThan(25);
    expect(left).toBeLessThanOrEqual(30);
    // Renewed with a shorter ttl: the new one counts.
    await a.compareAndSet(k, "lease", "lease", { ttl: 5 });
    const renewed = await b.ttl(k);
    expect(renewed).toBeGreaterThan(0);
    expect(renewed).toBeLessThanOrEqual(5);
    await a.compareAndSet(k, "lease", "kept");
    expect(await b.ttl(k)).toBe(Infinity);
    const short = key("short");
    await a.setIfAbsent(short, "x", { ttl: 0.1 });
    expect(await eventually(async () => (await b.ttl(short)) === undefined, 2_000)).toBe(true);
  });
}

function listAndCounterTests({ harness, connect, key }: StoreSuite): void {
  it("deletes only the expected value", async () => {
    const store = await connect();
    const k = key("del");
    await store.setIfAbsent(k, "mine");
    expect(await store.deleteIfEquals(k, "theirs")).toBe(false);
    expect(await store.get(k)).toBe("mine");
    expect(await store.deleteIfEquals(k, "mine")).toBe(true);
    expect(await store.get(k)).toBeUndefined();
    expect(await store.deleteIfEquals(k, "mine")).toBe(false);
  });

  it("lists by prefix, sorted, without expired keys or look-alikes", async () => {
    const store = await connect();
    const base = key("list");
    await store.setIfAbsent(`${base}:b`, "2");
    await store.setIfAbsent(`${base}:a`, "1");
    await store.setIfAbsent(`${base}:c*?[x]`, "glob characters are plain");
    await store.setIfAbsent(`${base}:gone`, "x", { ttl: 0.1 });
    await store.setIfAbsent(`${base}x:not-under`, "x");
    expect(
      await eventually(async () => (await store.get(`${base}:gone`)) === undefined, 2_000),
    ).toBe(true);
    expect(await store.list(`${base}:`)).toEqual([
      { key: `${base}:a`, value: "1" },
      { key: `${base}:b`, value: "2" },
      { key: `${base}:c*?[x]`, value: "glob characters are plain" },
    ]);
    expect(await store.list(`${key("empty")}:`)).toEqual([]);
  });

  it("increments atomically from many connections", async () => {
    const stores = await Promise.all([connect(), connect(), connect()]);
    const k = key("counter");
    const values = await Promise.all(
      Array.from({ length: 30 }, (_, i) => stores[i % 3]!.increment(k)),
    );
    expect([...values].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(await stores[0]!.increment(k, { by: -5 })).toBe(25);
    expect(await stores[0]!.get(k)).toBe("25");
  });

  it("keeps a counter's first expiry: a fixed window", async () => {
    const store = await connect();
    const k = key("window");
    expect(await store.increment(k, { ttl: 0.4 })).toBe(1);
    expect(await store.increment(k, { ttl: 60 })).toBe(2);
    expect(await eventually(async () => (await store.get(k)) === undefined, 2_000)).toBe(true);
    expect(await store.increment(k, { ttl: 60 })).toBe(1);
  });

  it("refuses to increment a value that is not a counter, and bad options, with CONFIG errors", async () => {
    const store = await connect();
    const k = key("text");
    await store.setIfAbsent(k, "hello");
    await expect(store.increment(k)).rejects.toSatisfy((e: unknown) => isCeleryTsError(e));
    await expect(store.setIfAbsent(key("bad"), "x", { ttl: 0 })).rejects.toSatisfy((e: unknown) =>
      isCeleryTsError(e, "CONFIG"),
    );
    await expect(store.increment(key("bad"), { by: 1.5 })).rejects.toSatisfy((e: unknown) =>
      isCeleryTsError(e, "CONFIG"),
    );
    expect(await store.get(k)).toBe("hello");
  });

  it("rejects with CLOSED after close()", async () => {
    const store = await harness.create();
    await store.connect();
    await store.close();
    await store.close();
    await expect(store.get(key("closed"))).rejects.toSatisfy((e: unknown) =>
      isCeleryTsError(e, "CLOSED"),
    );
  });
}
