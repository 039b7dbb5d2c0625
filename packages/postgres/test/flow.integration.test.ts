// Beat, fleet-wide rate limits and unique tasks with PostgreSQL as the broker, each keeping its
// coordination store in the broker's database (the broker's URL names it).
import { randomUUID } from "node:crypto";
import { createClient } from "@celery-ts/client";
import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  declareTask,
  defineTask,
  resolveTransport,
} from "@celery-ts/core";
import { createBeat, createWorker, tickTaskId, type Beat, type Worker } from "@celery-ts/worker";
import { afterEach, describe, expect, it } from "vitest";
import { PG_URL, useSchema } from "./support/pg.ts";
// Shared with the Redis and SQLite unique-task test.
import { uniqueAcrossProducers } from "../../redis/test/support/unique-producers.ts";

const { schema } = useSchema("flow");
// Consumers look every 0.1 s for what NOTIFY did not announce.
const url = `${PG_URL}?schema=${schema}&polling_interval=0.1`;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

describe("beat on PostgreSQL", () => {
  it("two instances send each one-second tick once, and the other takes over when one stops", async () => {
    const namespace = `pg-${randomUUID().slice(0, 8)}`;
    const queue = `beat-${randomUUID()}`;
    const entries = [{ name: "second", task: "pg.tick", every: 1, options: { queue } }];
    const beats: Beat[] = [0, 1].map(() =>
      createBeat({ broker: url, entries, namespace, leaseSeconds: 1 }),
    );
    cleanups.push(() => Promise.all(beats.map((b) => b.stop())));
    const received: { id: string; at: number }[] = [];
    const consumer = await resolveTransport(url);
    const abort = new AbortController();
    const consuming = consumer.consume(
      [queue],
      (delivery) => {
        if (delivery.message) {
          received.push({ id: decodeTaskMessage(delivery.message).headers.id, at: Date.now() });
        }
        void delivery.ack();
      },
      { prefetch: 10, signal: abort.signal },
    );
    cleanups.push(async () => {
      abort.abort();
      await consuming;
      await consumer.close();
    });
    const began = Date.now();
    await Promise.all(beats.map((b) => b.start()));
    await expect.poll(() => received.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    const leader = beats.find((b) => b.isLeader)!;
    expect(beats.filter((b) => b.isLeader)).toHaveLength(1);
    await leader.stop();
    const after = received.length;
    await expect.poll(() => received.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(after + 3);
    await Promise.all(beats.map((b) => b.stop()));
    // Every tick sent has reached the consumer once a marker sent after them has (the queue is
    // delivered in order): waited for, not a fixed pause.
    const marker = createTaskMessage({ task: "pg.marker" });
    await consumer.publish(encodeTaskMessage(marker), { queue });
    await expect
      .poll(() => received.some((r) => r.id === marker.headers.id), { timeout: 15_000 })
      .toBe(true);
    received.splice(
      received.findIndex((r) => r.id === marker.headers.id),
      1,
    );

    const tickOf = new Map<string, number>();
    for (let t = Math.floor(began / 1000) * 1000 - 10_000; t <= Date.now(); t += 1000) {
      tickOf.set(tickTaskId(namespace, "second", t), t);
    }
    const ticks = received.map((r) => tickOf.get(r.id));
    expect(ticks.every((t) => t !== undefined)).toBe(true);
    const sorted = [...new Set(ticks as number[])].sort((a, b) => a - b);
    expect(sorted).toHaveLength(received.length); // none sent twice
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBe(1000); // none missed
  }, 60_000);
});

describe("a fleet-wide rate limit on PostgreSQL", () => {
  it("three workers sharing the store run at most the limit (+ one window) in any second", async () => {
    const queue = `fleet-${randomUUID()}`;
    const starts: { at: number; worker: number }[] = [];
    const workers: Worker[] = [0, 1, 2].map((n) =>
      createWorker({
        broker: url,
        queues: [queue],
        concurrency: 4,
        hostname: `fleet-${n}@test`,
        remoteControl: false,
        heartbeat: false,
        tasks: [
          defineTask("pg.fleet", () => void starts.push({ at: Date.now(), worker: n }), {
            // One run per 200 ms window, shared by the three workers.
            rateLimit: { rate: "5/s", scope: "fleet" },
          }),
        ],
      }),
    );
    cleanups.push(() => Promise.all(workers.map((w) => w.stop())));
    const client = createClient({ broker: url });
    cleanups.push(() => client.close());
    const task = client.task(declareTask<[number]>("pg.fleet", { queue }));
    for (let i = 0; i < 20; i++) await task.delay(i);
    await Promise.all(workers.map((w) => w.start()));
    await expect.poll(() => starts.length, { timeout: 30_000, interval: 100 }).toBe(20);

    const times = starts.map((s) => s.at).sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0; i < times.length; i++) {
      busiest = Math.max(
        busiest,
        times.filter((t) => t >= times[i]! && t < times[i]! + 1000).length,
      );
    }
    const seconds = (times.at(-1)! - times[0]!) / 1000;
    process.stdout.write(
      `fleet limit 5/s on PostgreSQL, 3 workers: 20 runs in ${seconds.toFixed(2)} s, ` +
        `busiest second ${busiest}, by worker ${[0, 1, 2].map((n) => starts.filter((s) => s.worker === n).length).join("/")}\n`,
    );
    // Three workers each at 5/s would run 15 in a second; shared windows of 200 ms allow 5, and 7
    // at most when a second straddles a window's edge both ways.
    expect(busiest).toBeLessThanOrEqual(7);
    expect(seconds).toBeGreaterThanOrEqual(19 * 0.2 - 1);
  }, 60_000);
});

describe("unique tasks on PostgreSQL", () => {
  it("two clients on the broker's URL queue one task per key and share its handle", async () => {
    await uniqueAcrossProducers(url, "pg.sync_account");
  });
});
