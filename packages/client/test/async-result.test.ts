import { readFileSync } from "node:fs";
import {
  TaskFailedError,
  declareTask,
  isCeleryTsError,
  createMemoryBackend,
  createMemoryTransport,
  type ResultBackend,
  type ResultMeta,
  type WaitOptions,
} from "@celery-ts/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createClient, type AsyncResult } from "../src/index.ts";
import { meta, setup } from "./support.ts";

const add = declareTask<[number, number], number>("tasks.add");

const pythonFailure = JSON.parse(
  readFileSync(
    new URL("../../core/test/fixtures/redis-result-failure.json", import.meta.url),
    "utf8",
  ),
) as ResultMeta;

const later = (fn: () => Promise<void>): void => {
  setTimeout(() => void fn(), 10);
};

describe("AsyncResult.get()", () => {
  it("resolves with the result a worker stores later", async () => {
    const { client, store } = setup();
    const result = await client.task(add).delay(2, 3);
    later(() => store(result.id, "SUCCESS", 5));
    await expect(result.get({ timeout: 5 })).resolves.toBe(5);
  });

  it("resolves at once when the result is already stored", async () => {
    const { client, store } = setup();
    const result = client.asyncResult<{ sum: number }>("known-id");
    await store("known-id", "SUCCESS", { sum: 5 });
    await expect(result.get()).resolves.toEqual({ sum: 5 });
  });

  it("rejects with the remote exception of a failure stored by Python Celery", async () => {
    const { client, backend } = setup();
    const result = client.asyncResult(pythonFailure.task_id);
    await backend.store(pythonFailure.task_id, pythonFailure);
    const error: unknown = await result.get({ timeout: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(isCeleryTsError(error, "TASK_FAILED")).toBe(true);
    expect(error).toMatchObject({
      name: "ValueError",
      taskId: pythonFailure.task_id,
      excType: "ValueError",
      excMessage: "boom",
      excModule: "builtins",
    });
    expect((error as TaskFailedError).traceback).toContain("ValueError: boom");
  });

  it("rejects with TASK_REVOKED for a revoked task", async () => {
    const { client, store } = setup();
    const result = await client.task(add).delay(2, 3);
    await store(result.id, "REVOKED", {
      exc_type: "TaskRevokedError",
      exc_message: ["expired"],
      exc_module: "celery.exceptions",
    });
    const error: unknown = await result.get().catch((e) => e);
    expect(isCeleryTsError(error, "TASK_REVOKED")).toBe(true);
    expect((error as Error).message).toBe(
      `[celery-ts:client] task tasks.add[${result.id}] was revoked: expired`,
    );
  });

  it("with propagate: false, resolves with the failure instead of rejecting", async () => {
    const { client, backend } = setup();
    await backend.store(pythonFailure.task_id, pythonFailure);
    const value = await client.asyncResult<number>(pythonFailure.task_id).get({ propagate: false });
    expect(value).toBeInstanceOf(TaskFailedError);
    expect(value).toMatchObject({ excType: "ValueError", excMessage: "boom" });
  });

  it("rejects with a TIMEOUT error that names the task and the timeout", async () => {
    const { client } = setup();
    const result = await client.task(add).delay(2, 3);
    const error: unknown = await result.get({ timeout: 0.05 }).catch((e) => e);
    expect(isCeleryTsError(error, "TIMEOUT")).toBe(true);
    expect((error as Error).message).toContain(
      `task tasks.add[${result.id}] did not finish within 0.05 s`,
    );
    expect(isCeleryTsError((error as Error).cause, "TIMEOUT")).toBe(true);
  });

  it("stops waiting when its signal aborts", async () => {
    const { client } = setup();
    const result = await client.task(add).delay(2, 3);
    const controller = new AbortController();
    const waiting = result.get({ signal: controller.signal });
    controller.abort(new Error("user went away"));
    await expect(waiting).rejects.toThrow("user went away");
  });

  it("rejects a timeout that is not a number of seconds", async () => {
    const { client } = setup();
    await expect(client.asyncResult("x").get({ timeout: -1 })).rejects.toMatchObject({
      code: "CONFIG",
    });
  });

  describe("without a timeout", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("waits past the longest timer in steps, never with a delay setTimeout cannot hold", async () => {
      vi.useFakeTimers();
      const backend = createMemoryBackend();
      const waits: number[] = [];
      const spied: ResultBackend = {
        ...backend,
        waitFor: (id: string, options: WaitOptions) => {
          waits.push(options.timeout * 1000);
          return backend.waitFor(id, options);
        },
      };
      const client = createClient({ broker: createMemoryTransport(), backend: spied });
      const result = await client.task(add).delay(2, 3);
      const waiting = result.get();
      await vi.advanceTimersByTimeAsync(2 * 2_147_483_647 + 1000);
      await backend.store(result.id, meta(result.id, "SUCCESS", 5));
      await expect(waiting).resolves.toBe(5);
      expect(waits).toEqual([2_147_483_647, 2_147_483_647, 2_147_483_647]);
    });
  });
});

describe("AsyncResult state", () => {
  it("follows the task from PENDING to SUCCESS", async () => {
    const { client, store } = setup();
    const result = await client.task(add).delay(2, 3);
    expect(await result.status()).toBe("PENDING");
    expect(await result.ready()).toBe(false);
    expect(await result.info()).toBeUndefined();
    expect(await result.result()).toBeUndefined();

    await store(result.id, "STARTED");
    expect(await result.status()).toBe("STARTED");
    expect(await result.ready()).toBe(false);

    await store(result.id, "PROGRESS", { done: 3, total: 10 });
    expect(await result.status()).toBe("PROGRESS");
    expect((await result.info())?.result).toEqual({ done: 3, total: 10 });

    await store(result.id, "SUCCESS", 5);
    expect(await result.ready()).toBe(true);
    expect(await result.successful()).toBe(true);
    expect(await result.failed()).toBe(false);
    expect(await result.result()).toBe(5);
    expect(await result.traceback()).toBeNull();
  });

  it("reads a failure's exception and traceback without waiting", async () => {
    const { client, backend } = setup();
    await backend.store(pythonFailure.task_id, pythonFailure);
    const result = client.asyncResult(pythonFailure.task_id);
    expect(await result.status()).toBe("FAILURE");
    expect(await result.ready()).toBe(true);
    expect(await result.failed()).toBe(true);
    expect(await result.successful()).toBe(false);
    expect(await result.result()).toEqual(pythonFailure.result);
    expect(await result.traceback()).toBe(pythonFailure.traceback);
  });

  it("forget() deletes the stored result", async () => {
    const { client, backend } = setup();
    await backend.store("done-id", meta("done-id", "SUCCESS", 1));
    const result = client.asyncResult("done-id");
    await result.forget();
    expect(await result.status()).toBe("PENDING");
    expect(await backend.get("done-id")).toBeUndefined();
  });
});

describe("without a result backend", () => {
  const calls: [string, (result: AsyncResult<number>) => Promise<unknown>][] = [
    ["get", (r) => r.get()],
    ["status", (r) => r.status()],
    ["ready", (r) => r.ready()],
    ["successful", (r) => r.successful()],
    ["failed", (r) => r.failed()],
    ["info", (r) => r.info()],
    ["result", (r) => r.result()],
    ["traceback", (r) => r.traceback()],
    ["forget", (r) => r.forget()],
  ];

  it.each(calls)(
    "%s() rejects with NO_RESULT_BACKEND and says how to configure one",
    async (_name, call) => {
      const { client } = setup({ backend: false });
      const result = await client.task(add).delay(2, 3);
      const error: unknown = await call(result).catch((e) => e);
      expect(isCeleryTsError(error, "NO_RESULT_BACKEND")).toBe(true);
      expect((error as Error).message).toContain(
        'createClient({ broker, backend: "sqlite:///results.db" })',
      );
    },
  );
});
