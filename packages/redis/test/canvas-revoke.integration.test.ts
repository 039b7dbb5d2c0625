// revoke() on the results of a canvas (a group's GroupResult, a chain's result and its parents),
// as Celery's: one revoke command to every worker, through the client's control channel.
import { randomUUID } from "node:crypto";
import { currentTask, defineTask } from "@celery-ts/core";
import { chain, createClient, group, s, si, type Client } from "@celery-ts/client";
import { deleteRedisPrefix, testServers } from "@celery-ts/testing";
import { createWorker, type Worker } from "@celery-ts/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "./support/control-fleet.ts";

const prefix = `celery-ts-test:canvas-revoke:${randomUUID()}:`;
// The prefix covers the queues, the results and the pidbox: no other fleet hears these revokes.
const URL = `${testServers().redisUrl}?global_keyprefix=${prefix}`;
const queue = `canvas-revoke-${randomUUID()}`;

/** Ids of the runs that started, and of those whose abort signal fired. */
const started = new Set<string>();
const aborted = new Set<string>();
/** Opens the gate every `gated` run waits at. */
let openGate: () => void = () => {};
let gate = new Promise<void>((resolve) => (openGate = resolve));

const gated = defineTask(
  "canvas_revoke.gated",
  async (): Promise<number> => {
    const { id, signal } = currentTask();
    started.add(id);
    await new Promise<void>((resolve) => {
      void gate.then(resolve);
      signal.addEventListener("abort", () => {
        aborted.add(id);
        resolve();
      });
    });
    return 1;
  },
  { queue },
);
const add = defineTask("canvas_revoke.add", (a: number, b: number) => a + b, { queue });

let client: Client;
let worker: Worker;

beforeAll(async () => {
  client = createClient({ broker: URL, backend: URL });
  worker = createWorker({
    broker: URL,
    backend: URL,
    tasks: [gated, add],
    queues: [queue],
    concurrency: 4,
    shutdownTimeout: 5,
  });
  await worker.start();
}, 60_000);

afterAll(async () => {
  openGate();
  await worker?.stop();
  await client?.close();
  await deleteRedisPrefix(testServers().redisUrl, prefix);
});

/** Waits until the worker lists `id` as revoked. */
const revokedOnWorker = (id: string) =>
  eventually(async () => {
    const replies = await client.control.call("revoked", {}, { destination: [worker.hostname] });
    return (replies[0]?.[worker.hostname] as string[] | undefined)?.includes(id);
  }, `the worker to learn that ${id} is revoked`);

describe("revoke() on canvas results (Redis, TS worker)", () => {
  it("a restored GroupResult revokes every member, terminating the running ones", async () => {
    gate = new Promise<void>((resolve) => (openGate = resolve));
    const result = await client.applyAsync(group(s(gated), s(gated), s(gated)));
    await result.save();
    const restored = await client.restoreGroup(result.id);
    await eventually(() => result.results.every((r) => started.has(r.id)), "every member to start");
    await restored!.revoke({ terminate: true });
    for (const member of result.results) {
      await expect(
        (member as { get(o: object): Promise<unknown> }).get({ timeout: 20 }),
      ).rejects.toMatchObject({
        code: "TASK_REVOKED",
        message: expect.stringContaining("terminated"),
      });
      expect(aborted.has(member.id)).toBe(true);
    }
    await expect(result.get({ timeout: 5 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
  }, 60_000);

  it("a chain's result revokes its step, which the worker then never runs; the parent runs on", async () => {
    gate = new Promise<void>((resolve) => (openGate = resolve));
    const result = await client.applyAsync(chain(s(gated), si(add, 1, 1)));
    const parent = result.parent as { id: string; get(o: object): Promise<unknown> };
    await eventually(() => started.has(parent.id), "the chain's first step to start");
    await result.revoke();
    await revokedOnWorker(result.id);
    openGate();
    expect(await parent.get({ timeout: 20 })).toBe(1);
    await expect(result.get({ timeout: 20 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
    expect(await result.status()).toBe("REVOKED");
  }, 60_000);

  it("a chain's parent result revokes with terminate, and the chain stops there", async () => {
    gate = new Promise<void>((resolve) => (openGate = resolve));
    const result = await client.applyAsync(chain(s(gated), si(add, 2, 2)));
    const parent = result.parent!;
    await eventually(() => started.has(parent.id), "the chain's first step to start");
    await parent.revoke({ terminate: true });
    await expect(
      (parent as { get(o: object): Promise<unknown> }).get({ timeout: 20 }),
    ).rejects.toMatchObject({ code: "TASK_REVOKED" });
    expect(aborted.has(parent.id)).toBe(true);
    // The next step is never sent: it stays PENDING (Celery's behaviour too).
    expect(await result.status()).toBe("PENDING");
  }, 60_000);

  it("a result of a closed client refuses to revoke, saying why", async () => {
    const other = createClient({ broker: URL, backend: URL });
    const result = await other.applyAsync(group(si(add, 1, 2)));
    await other.close();
    await expect(result.revoke()).rejects.toMatchObject({ code: "CLOSED" });
  });
});
