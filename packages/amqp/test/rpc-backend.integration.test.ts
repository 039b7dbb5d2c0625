import { randomUUID } from "node:crypto";
import { celeryNow, isCeleryTsError, type ResultMeta } from "@celery-ts/core";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import {
  createAmqpTransport,
  createRpcBackend,
  type RpcBackend,
  type RpcBackendOptions,
} from "../src/index.ts";
import { internalsOf } from "../src/internal/registry.ts";
import {
  BROKER_URL,
  closeConnectionFromServer,
  queueListed,
  rabbitAdmin,
  unique,
  until,
} from "./support/rabbit.ts";

vi.setConfig({ testTimeout: 45_000 });

const admin = rabbitAdmin();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((backend) => backend.close()));
});
afterAll(() => admin.cleanup());

function backend(options: RpcBackendOptions = {}): RpcBackend {
  const created = createRpcBackend({ url: BROKER_URL, reconnectInitialDelay: 0.05, ...options });
  admin.trackQueue(created.replyQueue);
  open.push(created);
  return created;
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

const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
};

describe("rpc:// results", () => {
  it("sends a result as Celery's RPCBackend does: to reply_to, by correlation_id, Celery's body", async () => {
    const replyQueue = unique("reply-raw");
    admin.trackQueue(replyQueue);
    await admin.withChannel((channel) => channel.assertQueue(replyQueue));
    const worker = backend();
    const taskId = randomUUID();
    await worker.store(taskId, meta(taskId, "SUCCESS", { sum: 5, text: "ü" }), {
      replyTo: replyQueue,
      correlationId: taskId,
    });
    const raw = await admin.withChannel((channel) => channel.get(replyQueue, { noAck: true }));
    if (raw === false) throw new Error("no reply");
    // Byte for byte what Python's json.dumps writes for Celery's _to_result(): five keys, no date_done.
    expect(raw.content.toString()).toBe(
      `{"task_id": "${taskId}", "status": "SUCCESS", "result": {"sum": 5, "text": "\\u00fc"}, ` +
        '"traceback": null, "children": []}',
    );
    expect(raw.fields).toMatchObject({ exchange: "", routingKey: replyQueue });
    expect(raw.properties).toMatchObject({
      contentType: "application/json",
      contentEncoding: "utf-8",
      correlationId: taskId,
      deliveryMode: 1,
    });
  });

  it("reads results from its reply queue: waitFor() wakes on a ready state only", async () => {
    const [client, worker] = [backend(), backend()];
    const replyTo = await client.replyTo();
    const taskId = randomUUID();
    const waiting = client.waitFor(taskId, { timeout: 5 });
    await worker.store(taskId, meta(taskId, "STARTED", { pid: 1 }), { replyTo });
    await until(async () => (await client.get(taskId))?.status === "STARTED");
    await worker.store(taskId, meta(taskId, "RETRY", { exc_type: "E" }), { replyTo });
    await worker.store(
      taskId,
      {
        ...meta(taskId, "FAILURE", {
          exc_type: "ValueError",
          exc_message: ["boom"],
          exc_module: "builtins",
        }),
        traceback: "tb",
      },
      { replyTo, correlationId: taskId },
    );
    const ready = await waiting;
    expect(ready).toEqual({
      status: "FAILURE",
      result: { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" },
      traceback: "tb",
      children: [],
      date_done: null,
      task_id: taskId,
    });
    // Later waiters and get() read the cached result; forget() drops it.
    expect((await client.waitFor(taskId, { timeout: 0.01 })).status).toBe("FAILURE");
    await client.forget(taskId);
    expect(await client.get(taskId)).toBeUndefined();
  });

  it("serves many waiters, several on one task", async () => {
    const [client, worker] = [backend(), backend()];
    const replyTo = await client.replyTo();
    const ids = Array.from({ length: 50 }, () => randomUUID());
    const waits = [
      ...ids.map((id) => client.waitFor(id, { timeout: 10 })),
      ...[1, 2, 3].map(() => client.waitFor(ids[0]!, { timeout: 10 })),
    ];
    await Promise.all(ids.map((id, i) => worker.store(id, meta(id, "SUCCESS", i), { replyTo })));
    expect((await Promise.all(waits)).map((r) => r.result)).toEqual([...ids.keys(), 0, 0, 0]);
  });

  it("sends nothing without a reply_to, as Celery does", async () => {
    const worker = backend();
    await worker.store("t", meta("t", "SUCCESS", 1));
    await worker.store("t", meta("t", "SUCCESS", 1), {});
  });

  it("times out, aborts, and rejects waiters on close()", async () => {
    const client = backend();
    const started = Date.now();
    const timeout = await caught(() => client.waitFor(randomUUID(), { timeout: 0.2 }));
    expect(isCeleryTsError(timeout, "TIMEOUT")).toBe(true);
    expect(timeout).toMatchObject({ retryable: true });
    expect((timeout as Error).message).toMatch(/only to the client that sent the task/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    const controller = new AbortController();
    const aborted = client.waitFor(randomUUID(), { timeout: 5, signal: controller.signal });
    controller.abort(new Error("caller gave up"));
    await expect(aborted).rejects.toThrow("caller gave up");
    const pending = client.waitFor(randomUUID(), { timeout: 5 }).catch((e: unknown) => e);
    await client.close();
    expect(isCeleryTsError(await pending, "CLOSED")).toBe(true);
    expect(isCeleryTsError(await caught(() => client.get("x")), "CLOSED")).toBe(true);
  });

  it("keeps at most maxCachedResults results, dropping the oldest", async () => {
    const [client, worker] = [backend({ maxCachedResults: 2 }), backend()];
    const replyTo = await client.replyTo();
    for (const id of ["a", "b", "c"]) await worker.store(id, meta(id, "SUCCESS", id), { replyTo });
    await until(async () => (await client.get("c")) !== undefined);
    expect(await client.get("a")).toBeUndefined();
    expect((await client.get("b"))?.result).toBe("b");
  });

  it("keeps its reply queue across a reconnect, so results sent meanwhile still arrive", async () => {
    const [client, worker] = [backend(), backend()];
    const replyTo = await client.replyTo();
    const manager = internalsOf(client)!.manager;
    const port = manager.session?.localPort;
    await closeConnectionFromServer(port);
    const taskId = randomUUID();
    // Sent while the client is away: the queue is not auto-deleted, so the result waits.
    await worker.store(taskId, meta(taskId, "SUCCESS", "kept"), { replyTo });
    expect((await client.waitFor(taskId, { timeout: 10 })).result).toBe("kept");
    expect(manager.session?.localPort).not.toBe(port);
  });

  it("declares its reply queue again when it is deleted under it", async () => {
    const [client, worker] = [backend(), backend()];
    const replyTo = await client.replyTo();
    await admin.withChannel((channel) => channel.deleteQueue(replyTo));
    await until(() => admin.queueExists(replyTo), 5_000, "the reply queue to come back");
    const taskId = randomUUID();
    await worker.store(taskId, meta(taskId, "SUCCESS", "again"), { replyTo });
    expect((await client.waitFor(taskId, { timeout: 5 })).result).toBe("again");
  });

  it("declares its reply queue durable, expiring once unused", async () => {
    const client = backend({ replyQueueExpires: 0.5 });
    const replyTo = await client.replyTo();
    expect(await admin.queueExists(replyTo)).toBe(true);
    await client.close();
    // A passive declare would count as using it: ask rabbitmqctl instead, until it is gone.
    await until(async () => !(await queueListed(replyTo)), 30_000, "the unused queue to expire");
    expect(await admin.queueExists(replyTo)).toBe(false);
  });

  it("shares a transport's connection, and leaves it open when closed", async () => {
    const transport = createAmqpTransport({ url: BROKER_URL });
    open.push(transport);
    const shared = createRpcBackend({ broker: transport });
    admin.trackQueue(shared.replyQueue);
    const replyTo = await shared.replyTo();
    const taskId = randomUUID();
    await shared.store(taskId, meta(taskId, "SUCCESS", 7), { replyTo });
    expect((await shared.waitFor(taskId, { timeout: 5 })).result).toBe(7);
    expect(internalsOf(transport)?.manager.session?.localPort).toBeDefined();
    await shared.close();
    const queue = unique("still-open");
    admin.trackCeleryQueue(queue);
    await transport.purge(queue);
    expect(() => createRpcBackend({ broker: { ...transport } })).toThrow(/createAmqpTransport/);
  });
});
