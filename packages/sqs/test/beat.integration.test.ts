// Beat on SQS, which keeps no coordination store: the lease and tick records go to a SQLite store
// named by URL.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeTaskMessage, silentLogger } from "@celery-ts/core";
import { createBeat } from "@celery-ts/worker";
import { expect, it, vi } from "vitest";
import { createSqsTransport } from "../src/index.ts";
import { collect } from "./support/consumer.ts";
import { useFauxqs } from "./support/fauxqs.ts";

vi.setConfig({ testTimeout: 60_000 });

const fauxqs = useFauxqs();

it("beat sends each tick once over SQS, with its lease and records in a SQLite store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-sqs-"));
  const queue = `beat-sqs-${randomUUID().slice(0, 8)}`;
  const entries = [{ name: "e", task: "sqs.tick", every: 0.5, options: { queue } }];
  const beats = [0, 1].map(() =>
    createBeat({
      broker: createSqsTransport(fauxqs.options()),
      store: `sqlite:///${join(dir, "store.db")}`,
      entries,
      leaseSeconds: 1,
      logger: silentLogger,
    }),
  );
  const consumer = createSqsTransport(fauxqs.options());
  const inbox = collect(consumer, [queue], 10, (delivery) => void delivery.ack());
  try {
    await Promise.all(beats.map((beat) => beat.start()));
    const delivered = await inbox.waitFor(4, 30_000);
    const ids = delivered.map((d) => decodeTaskMessage(d.message!).headers.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(beats.filter((beat) => beat.isLeader)).toHaveLength(1);
    expect(decodeTaskMessage(delivered[0]!.message!).headers.task).toBe("sqs.tick");
  } finally {
    await inbox.stop();
    await Promise.all(beats.map((beat) => beat.stop()));
    await consumer.close();
    await rm(dir, { recursive: true, force: true });
  }
});
