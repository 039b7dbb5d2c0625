import { backendConformance, transportConformance } from "@celery-ts/testing";
import { afterAll } from "vitest";
import { createRedisBackend, createRedisTransport } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, uniquePrefix } from "./support/redis.ts";

const VISIBILITY_TIMEOUT = 1; // seconds
// kombu's unacked hash and index have fixed names: a prefix of our own (kombu's
// global_keyprefix) keeps this file's short visibility timeout away from everyone else's messages.
const keyPrefix = uniquePrefix("conformance");
const raw = rawClient();

afterAll(async () => {
  await deletePrefix(raw, keyPrefix);
});

transportConformance("redis", {
  create: (options) =>
    createRedisTransport({
      ...options,
      connection: REDIS_URL,
      keyPrefix,
      visibilityTimeout: VISIBILITY_TIMEOUT,
    }),
  // Client-tracking wake-ups alone: a lost wake-up would wait a minute for the poll.
  createWakeOnly: () =>
    createRedisTransport({
      connection: REDIS_URL,
      keyPrefix,
      visibilityTimeout: VISIBILITY_TIMEOUT,
      pollInterval: 60,
    }),
  async injectRaw(queue, text) {
    await raw.lpush(`${keyPrefix}${queue}`, text);
  },
  // A port nothing listens on: calls fail once the offline timeout passes.
  createUnreachable: () =>
    createRedisTransport({ connection: "redis://127.0.0.1:1", offlineTimeout: 0.5 }),
});

backendConformance("redis", {
  create: () => createRedisBackend({ connection: REDIS_URL, keyPrefix }),
});
