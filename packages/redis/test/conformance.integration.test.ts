import { backendConformance, transportConformance } from "@celery-ts/testing";
import { afterAll, vi } from "vitest";
import { createRedisBackend, createRedisTransport } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, uniquePrefix } from "./support/redis.ts";

// The suite waits up to the visibility timeout plus 5 s for a dead consumer's messages.
vi.setConfig({ testTimeout: 15_000 });

const VISIBILITY_MS = 1_000;
// kombu's unacked hash and index have fixed names: a prefix of our own (kombu's
// global_keyprefix) keeps this file's short visibility timeout away from everyone else's messages.
const keyPrefix = uniquePrefix("conformance");
const raw = rawClient();

afterAll(async () => {
  await deletePrefix(raw, keyPrefix);
});

transportConformance("redis", {
  create: () =>
    createRedisTransport({ connection: REDIS_URL, keyPrefix, visibilityTimeoutMs: VISIBILITY_MS }),
  async injectRaw(queue, text) {
    await raw.lpush(`${keyPrefix}${queue}`, text);
  },
  // The timeout, plus one restore interval (a quarter of it), plus a wake-up.
  redeliveryWithinMs: VISIBILITY_MS * 1.25 + 100,
});

backendConformance("redis", {
  create: () => createRedisBackend({ connection: REDIS_URL, keyPrefix }),
});
