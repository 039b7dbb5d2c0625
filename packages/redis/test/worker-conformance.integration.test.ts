import { workerConformance } from "@celery-ts/testing";
import { createWorker } from "@celery-ts/worker";
import { afterAll } from "vitest";
import { createRedisBackend, createRedisTransport } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, uniquePrefix } from "./support/redis.ts";

const VISIBILITY_TIMEOUT = 1; // seconds
// A prefix of this file's own keeps its short visibility timeout away from other messages.
const keyPrefix = uniquePrefix("worker-suite");
const raw = rawClient();
afterAll(async () => {
  await deletePrefix(raw, keyPrefix);
  raw.disconnect();
});

workerConformance("redis", {
  createWorker,
  createTransport: () =>
    createRedisTransport({
      connection: REDIS_URL,
      keyPrefix,
      visibilityTimeout: VISIBILITY_TIMEOUT,
    }),
  createBackend: () => createRedisBackend({ connection: REDIS_URL, keyPrefix }),
  async injectRaw(queue, text) {
    await raw.lpush(`${keyPrefix}${queue}`, text);
  },
});
