import { randomUUID } from "node:crypto";
import { createClient } from "@celery-ts/client";
import { createWorker } from "@celery-ts/worker";
import { Redis } from "ioredis";
import { afterAll } from "vitest";
import { describeCanvasInterop } from "./support/canvas-interop.ts";
import { REDIS_URL } from "./support/redis.ts";

// The run's database (CELERY_TS_REDIS_URL); its own queues and group ids, removed afterwards.
const URL = REDIS_URL;
const SEP = "\x06\x16";
const queues: string[] = [];
const raw = new Redis(URL);

afterAll(async () => {
  const keys = queues.flatMap((q) => [
    q,
    `${q}${SEP}3`,
    `${q}${SEP}6`,
    `${q}${SEP}9`,
    `_kombu.binding.${q}`,
  ]);
  if (keys.length > 0) await raw.del(...keys);
  await raw.quit();
});

describeCanvasInterop("Redis", () => ({
  python: { brokerUrl: URL, resultBackend: URL },
  client: () => createClient({ broker: URL, backend: URL }),
  worker: (workerQueues, tasks) =>
    createWorker({ broker: URL, backend: URL, tasks, queues: workerQueues, concurrency: 4 }),
  queue: (label) => {
    const queue = `${label}-${randomUUID()}`;
    queues.push(queue);
    return queue;
  },
}));
