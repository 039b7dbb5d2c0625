import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteRedisPrefix, testServers } from "@celery-ts/testing";
import { afterAll, describe, it } from "vitest";
import { uniqueAcrossProducers } from "./support/unique-producers.ts";

const dir = mkdtempSync(join(tmpdir(), "celery-ts-unique-"));
const REDIS = testServers().redisUrl;
const prefix = `celery-ts-test:unique:${randomUUID()}:`;

const brokers = [
  { name: "sqlite", url: `sqlite:///${join(dir, "queue.db")}` },
  { name: "redis", url: `${REDIS}?global_keyprefix=${prefix}` },
];

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await deleteRedisPrefix(REDIS, prefix);
});

describe.each(brokers)("unique tasks across producers on $name", ({ url }) => {
  it("two clients on the broker's URL queue one task and share its handle", async () => {
    await uniqueAcrossProducers(url, "u.sync_account");
  });
});
