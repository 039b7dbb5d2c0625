import { startPythonWorker } from "@celery-ts/testing";
import { afterAll, afterEach, describe, it, vi } from "vitest";
// Not yet devDependencies of this package (see the README): imported from the workspace.
import { createClient } from "@celery-ts/client";
import { createWorker } from "@celery-ts/worker";
// The scenarios are the Redis interop test's, run here on RabbitMQ with Celery's rpc:// backend.
import {
  pythonClientToTsWorker,
  tsClientToPythonWorker,
} from "../../redis/test/fixtures/interop-exact.ts";
import { exactTasks } from "../../redis/test/fixtures/interop-tasks.ts";
import { createAmqpTransport, createRpcBackend } from "../src/index.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";

// Keyword arguments, exact integers and Celery's exceptions with the real Python Celery on
// RabbitMQ, both ways, results by rpc://.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const python = { brokerUrl: BROKER_URL, resultBackend: "rpc://" };
const admin = rabbitAdmin();
// Python workers declare Celery's remote-control exchange on the broker.
admin.trackSharedExchange("celery.pidbox");
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => admin.cleanup());

describe("kwargs, exact integers and Celery's exceptions with Python Celery on RabbitMQ", () => {
  it("a Python client and a celery-ts worker", async () => {
    const queue = unique("interop-exact-ts-worker");
    admin.trackCeleryQueue(queue);
    const backend = createRpcBackend({ url: BROKER_URL });
    admin.trackQueue(backend.replyQueue);
    const transport = createAmqpTransport({ url: BROKER_URL });
    const worker = createWorker({
      broker: transport,
      backend,
      tasks: exactTasks(),
      queues: [queue],
      shutdownTimeout: 5,
    });
    await worker.start();
    cleanups.push(async () => {
      await worker.stop();
      await Promise.all([transport.close(), backend.close()]);
    });
    await pythonClientToTsWorker(python, queue);
  });

  it("a celery-ts client and a Python worker", async () => {
    const queue = unique("interop-exact-py-worker");
    admin.trackCeleryQueue(queue);
    const worker = await startPythonWorker({ ...python, queues: [queue] });
    cleanups.push(async () => worker.stop());
    const backend = createRpcBackend({ url: BROKER_URL });
    admin.trackQueue(backend.replyQueue);
    const transport = createAmqpTransport({ url: BROKER_URL });
    const client = createClient({ broker: transport, backend });
    cleanups.push(async () => {
      await client.close();
      await Promise.all([transport.close(), backend.close()]);
    });
    await tsClientToPythonWorker(client, queue);
  });
});
