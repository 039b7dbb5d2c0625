import { defineTask, type ResultBackend } from "@celery-ts/core";
import { runPythonClient, startPythonWorker, testServers } from "@celery-ts/testing";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
// Not yet devDependencies of this package (see the README): imported from the workspace.
import { createClient } from "@celery-ts/client";
import { createRedisBackend } from "@celery-ts/redis";
import { createWorker } from "@celery-ts/worker";
import { createAmqpTransport } from "../src/index.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";

// RabbitMQ as the broker, Redis as the result backend: results are stored (any client, any time),
// so no reply_to is involved and nothing outside this package needs to change.
vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 });

const REDIS_URL = testServers().redisUrl;
const python = { brokerUrl: BROKER_URL, resultBackend: REDIS_URL };

const admin = rabbitAdmin();
// Python workers declare Celery's remote-control exchange on the broker.
admin.trackSharedExchange("celery.pidbox");
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => admin.cleanup());

function redisBackend(): ResultBackend {
  const backend = createRedisBackend(REDIS_URL);
  cleanups.push(() => backend.close());
  return backend;
}

describe("RabbitMQ broker with the Redis result backend", () => {
  it("Python client -> celery-ts worker: the Python client reads results from Redis", async () => {
    const queue = unique("interop-redis-ts-worker");
    admin.trackCeleryQueue(queue);
    const transport = createAmqpTransport({ url: BROKER_URL });
    const worker = createWorker({
      broker: transport,
      backend: redisBackend(),
      tasks: [
        defineTask("interop.add", (a: number, b: number) => a + b),
        defineTask("interop.fail", (message: string) => {
          throw Object.assign(new Error(message), { name: "ValueError" });
        }),
      ],
      queues: [queue],
      shutdownTimeout: 5,
    });
    await worker.start();
    cleanups.push(async () => {
      await worker.stop();
      await transport.close();
    });
    expect(
      await runPythonClient(python, {
        op: "apply_async",
        task: "interop.add",
        args: [4, 5],
        queue,
        timeout: 30,
      }),
    ).toMatchObject({ status: "SUCCESS", result: 9 });
    expect(
      await runPythonClient(python, {
        op: "apply_async",
        task: "interop.fail",
        args: ["nope"],
        queue,
        timeout: 30,
      }),
    ).toMatchObject({ status: "FAILURE", exc_type: "ValueError", exc_message: "nope" });
  });

  it("celery-ts client -> Python worker: the celery-ts client reads results from Redis", async () => {
    const queue = unique("interop-redis-py-worker");
    admin.trackCeleryQueue(queue);
    const worker = await startPythonWorker({ ...python, queues: [queue] });
    cleanups.push(async () => expect(await worker.stop()).toBe(0));
    const transport = createAmqpTransport({ url: BROKER_URL });
    const client = createClient({ broker: transport, backend: redisBackend() });
    cleanups.push(async () => {
      await client.close();
      await transport.close();
    });
    const result = await client.sendTask<number>("interop.add", { args: [40, 2], queue });
    expect(await result.get({ timeout: 30 })).toBe(42);
    // A stored result: any client reads it later, by id (what rpc:// cannot do).
    const other = createClient({ broker: transport, backend: redisBackend() });
    cleanups.push(() => other.close());
    expect(await other.asyncResult(result.id).get({ timeout: 5 })).toBe(42);
  });
});
