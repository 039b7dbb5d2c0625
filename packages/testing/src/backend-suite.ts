import { randomUUID } from "node:crypto";
import { celeryNow, isCeleryTsError, type ResultBackend, type ResultMeta } from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
import { waitUntil } from "./wait-until.ts";
import { sleep } from "@celery-ts/core/driver";

export interface BackendHarness {
  /** A new connection to the same store (server or file). */
  create(): ResultBackend | Promise<ResultBackend>;
}

function meta(taskId: string, status: string, result: unknown = null): ResultMeta {
  return {
    status,
    result,
    traceback: null,
    children: [],
    date_done: status === "SUCCESS" ? celeryNow() : null,
    task_id: taskId,
  };
}

interface BackendSuite {
  connect(): Promise<ResultBackend>;
  id(): string;
}

/** The connections of one test, closed after it (call inside the describe). */
function backendSuite(harness: BackendHarness): BackendSuite {
  const open: ResultBackend[] = [];
  const connect = async (): Promise<ResultBackend> => {
    const backend = await harness.create();
    open.push(backend);
    await backend.connect();
    return backend;
  };
  const id = (): string => randomUUID();

  afterEach(async () => {
    await Promise.all(open.splice(0).map((backend) => backend.close()));
  });
  return { connect, id };
}

/** The behaviour every result backend must have. */
export function backendConformance(name: string, harness: BackendHarness): void {
  // The tests' own waits are bounded (10 s for a waiter, 15 s for an expiry): the runner's 5 s
  // default would cut them short on a loaded machine.
  describe(`ResultBackend conformance: ${name}`, { timeout: 30_000 }, () => {
    const suite = backendSuite(harness);
    storeAndWaitTests(suite);
    forgetAndExpiryTests(suite);
  });
}

function storeAndWaitTests({ connect, id }: BackendSuite): void {
  it("knows nothing of a task it never stored", async () => {
    const backend = await connect();
    expect(await backend.get(id())).toBeUndefined();
  });

  it("stores and reads back a result, seen from another connection", async () => {
    const [writer, reader] = [await connect(), await connect()];
    const taskId = id();
    const stored = {
      ...meta(taskId, "SUCCESS", { sum: 5, nested: ["ü", null, 1.5] }),
      name: "tasks.add",
    };
    await writer.store(taskId, stored);
    expect(await reader.get(taskId)).toEqual(stored);
  });

  it("overwrites an earlier state of the same task", async () => {
    const backend = await connect();
    const taskId = id();
    await backend.store(taskId, meta(taskId, "STARTED"));
    await backend.store(taskId, meta(taskId, "SUCCESS", 42));
    expect((await backend.get(taskId))?.status).toBe("SUCCESS");
    expect((await backend.get(taskId))?.result).toBe(42);
  });

  it("resolves a waiter at once when the result is already there", async () => {
    const backend = await connect();
    const taskId = id();
    await backend.store(taskId, meta(taskId, "SUCCESS", 1));
    // Bounded, not timed: a waiter that did not read what is there would wait for ever.
    expect((await backend.waitFor(taskId, { timeout: 10 })).result).toBe(1);
  });

  it("wakes a waiter when another connection stores a ready state, not before", async () => {
    const [waiter, writer] = [await connect(), await connect()];
    const taskId = id();
    const waiting = waiter.waitFor(taskId, { timeout: 10 });
    await sleep(50);
    await writer.store(taskId, meta(taskId, "STARTED"));
    await sleep(100);
    await writer.store(taskId, meta(taskId, "FAILURE", { exc_type: "ValueError" }));
    const ready = await waiting;
    expect(ready.status).toBe("FAILURE");
    expect(ready.result).toEqual({ exc_type: "ValueError" });
  });

  it("rejects a waiter with a TIMEOUT error when no result comes", async () => {
    const backend = await connect();
    const started = Date.now();
    const error = await backend.waitFor(id(), { timeout: 0.2 }).catch((e: unknown) => e);
    expect(isCeleryTsError(error, "TIMEOUT")).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it("stops waiting when the signal aborts", async () => {
    const backend = await connect();
    const controller = new AbortController();
    const waiting = backend.waitFor(id(), { timeout: 5, signal: controller.signal });
    controller.abort(new Error("caller gave up"));
    await expect(waiting).rejects.toThrow("caller gave up");
  });

  it("serves many concurrent waiters, several on one task", async () => {
    const [waiter, writer] = [await connect(), await connect()];
    const ids = Array.from({ length: 50 }, id);
    const waits = [
      ...ids.map((taskId) => waiter.waitFor(taskId, { timeout: 10 })),
      ...[1, 2, 3, 4, 5].map(() => waiter.waitFor(ids[0]!, { timeout: 10 })),
    ];
    await sleep(50);
    await Promise.all(ids.map((taskId, i) => writer.store(taskId, meta(taskId, "SUCCESS", i))));
    const results = await Promise.all(waits);
    expect(results.map((r) => r.result)).toEqual([...ids.keys(), 0, 0, 0, 0, 0]);
  });
}

function forgetAndExpiryTests({ connect, id }: BackendSuite): void {
  it("forgets a result", async () => {
    const backend = await connect();
    const taskId = id();
    await backend.store(taskId, meta(taskId, "SUCCESS", 1));
    await backend.forget(taskId);
    expect(await backend.get(taskId)).toBeUndefined();
  });

  it("expires a result after its expiry", async () => {
    const backend = await connect();
    const [short, long] = [id(), id()];
    await backend.store(long, meta(long, "SUCCESS", 2));
    const storedAt = Date.now();
    await backend.store(short, meta(short, "SUCCESS", 1), { expires: 1 });
    const early = await backend.get(short);
    // Read within its second, it is there (a machine that stalled past the second may not see it).
    if (Date.now() - storedAt < 1_000) expect(early).toBeDefined();
    // Gone once expired: waited for (bounded), not a fixed pause a loaded machine may cut short.
    await waitUntil(async () => (await backend.get(short)) === undefined, {
      timeoutMs: 15_000,
      what: "the result stored with expires: 1 to expire",
    });
    expect((await backend.get(long))?.result).toBe(2);
  });
}
