import { randomUUID } from "node:crypto";
import { startPythonWorker } from "@celery-ts/testing";
import { Redis } from "ioredis";
import { afterAll, describe, it } from "vitest";
// Not yet devDependencies of this package: imported from the workspace by path.
import { createClient } from "@celery-ts/client";
import { createWorker } from "@celery-ts/worker";
import { pythonClientToTsWorker, tsClientToPythonWorker } from "./fixtures/interop-exact.ts";
import { exactTasks } from "./fixtures/interop-tasks.ts";
import { REDIS_URL } from "./support/redis.ts";

// Keyword arguments, exact integers and Celery's exceptions with the real Python Celery on Redis,
// both ways. The run's database (CELERY_TS_REDIS_URL), its own queues, removed afterwards.
const URL = REDIS_URL;
const config = { brokerUrl: URL, resultBackend: URL };
const SEP = "\x06\x16";
const raw = new Redis(URL);
const queues: string[] = [];
const taskIds: string[] = [];
const newQueue = (label: string): string => {
  const queue = `interop-exact-${label}-${randomUUID()}`;
  queues.push(queue);
  return queue;
};
const remember = (id: string): void => void taskIds.push(id);

afterAll(async () => {
  const keys = [
    ...queues.flatMap((q) => [
      q,
      `${q}${SEP}3`,
      `${q}${SEP}6`,
      `${q}${SEP}9`,
      `_kombu.binding.${q}`,
      `_celery-ts.dead.${q}`,
    ]),
    ...taskIds.map((id) => `celery-task-meta-${id}`),
  ];
  if (keys.length > 0) await raw.del(...keys);
  await raw.quit();
});

describe("kwargs, exact integers and Celery's exceptions with Python Celery on Redis", () => {
  it("a Python client and a celery-ts worker", async () => {
    const queue = newQueue("ts-worker");
    const worker = createWorker({
      broker: URL,
      backend: URL,
      tasks: exactTasks(),
      queues: [queue],
      hostname: `celery-ts-interop-exact@${process.pid}`,
      shutdownTimeout: 5,
    });
    await worker.start();
    try {
      await pythonClientToTsWorker(config, queue, remember);
    } finally {
      await worker.stop();
    }
  }, 120_000);

  it("a celery-ts client and a Python worker", async () => {
    const queue = newQueue("py-worker");
    const python = await startPythonWorker({ ...config, queues: [queue] });
    const client = createClient({ broker: URL, backend: URL });
    try {
      await tsClientToPythonWorker(client, queue, remember);
    } finally {
      await client.close();
      await python.stop();
    }
  }, 120_000);
});
