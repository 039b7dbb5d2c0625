import { atomicPublishConformance, secondRedisUrl, storeConformance } from "@celery-ts/testing";
import { afterAll } from "vitest";
import { createRedisStore, createRedisTransport, createStoreFromUrl } from "../src/index.ts";
import { deletePrefix, rawClient, REDIS_URL, uniquePrefix } from "./support/redis.ts";

const keyPrefix = uniquePrefix("store");
const raw = rawClient();

afterAll(async () => {
  await deletePrefix(raw, keyPrefix);
});

storeConformance("redis", { create: () => createRedisStore({ connection: REDIS_URL, keyPrefix }) });

// The URL's global_keyprefix reaches the store, as it reaches the broker and results.
storeConformance("redis (from a URL)", {
  create: () =>
    createStoreFromUrl(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(`${keyPrefix}url:`)}`),
});

// Store and broker on one database: a tick's message and its record in one script.
atomicPublishConformance("redis", {
  pair: () => ({
    store: createRedisStore({ connection: REDIS_URL, keyPrefix }),
    transport: createRedisTransport({ connection: REDIS_URL, keyPrefix }),
  }),
  elsewhere: () => createRedisTransport({ connection: secondRedisUrl(REDIS_URL), keyPrefix }),
  // The queue's list key holds a string: LPUSH fails with WRONGTYPE.
  refusePublish: async (queue) => {
    await raw.set(`${keyPrefix}${queue}`, "not a list");
    return async () => void (await raw.del(`${keyPrefix}${queue}`));
  },
});
