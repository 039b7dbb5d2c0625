import { createClient } from "@celery-ts/client";
import type { Transport } from "@celery-ts/core";
import { testServers } from "@celery-ts/testing";
import { createWorker } from "@celery-ts/worker";
import { afterAll, vi } from "vitest";
// The shared canvas scenarios live beside the Redis interop tests, which run them on Redis alone.
import { describeCanvasInterop } from "../../redis/test/support/canvas-interop.ts";
import { createAmqpTransport } from "../src/index.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";

vi.setConfig({ hookTimeout: 60_000 });

// RabbitMQ carries the messages; results and chord counters live in Redis, as in most Celery
// deployments (Celery's rpc:// backend refuses chords), in the run's database.
const RESULTS = testServers().redisUrl;
const admin = rabbitAdmin();
admin.trackSharedExchange("celery.pidbox");
const delayPrefix = unique("celery_ts.delay.canvas");
admin.trackDelayTopology(delayPrefix);
const transports: Transport[] = [];
const transport = (): Transport => {
  const created = createAmqpTransport({ url: BROKER_URL, delayPrefix });
  transports.push(created);
  return created;
};

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await admin.cleanup();
});

describeCanvasInterop("RabbitMQ (results in Redis)", () => ({
  python: { brokerUrl: BROKER_URL, resultBackend: RESULTS },
  client: () => createClient({ broker: transport(), backend: RESULTS }),
  worker: (queues, tasks) =>
    createWorker({ broker: transport(), backend: RESULTS, tasks, queues, concurrency: 4 }),
  queue: (label) => {
    const queue = unique(label);
    admin.trackCeleryQueue(queue);
    return queue;
  },
}));
