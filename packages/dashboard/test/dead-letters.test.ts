// Dead letters through the dashboard's HTTP API, against a real in-memory broker and a real
// worker: a rejected task is listed with its id, name and reason, counted on its queue, replayed
// (it runs) and purged; without the credentials, or without the page's header, nothing happens.
import { createClient } from "@celery-ts/client";
import { createWorker } from "@celery-ts/worker";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startDashboard, type Dashboard } from "../src/index.ts";
import { shutGates } from "./fixtures/gates.ts";
import * as tasks from "./fixtures/tasks.ts";

const broker = `memory://dash-dead-${process.pid}`;
const QUEUE = "dash-dead";
const TOKEN = "dead-letter-token";
const auth = { authorization: `Bearer ${TOKEN}` };
const page = { ...auth, "content-type": "application/json", "x-celery-ts-dashboard": "1" };

const worker = createWorker({ broker, backend: broker, tasks: [tasks.gated], queues: [QUEUE] });
const client = createClient({ broker, backend: broker });
let dashboard: Dashboard;

beforeAll(async () => {
  dashboard = await startDashboard({
    broker,
    port: 0,
    auth: { token: TOKEN },
    queues: [QUEUE],
    enableEvents: false,
    pollInterval: 1,
  });
  await worker.start();
});

afterAll(async () => {
  await worker.stop();
  await client.close();
  await dashboard?.close();
});

interface Listing {
  letters: { taskId: string; name: string; reason: string; rejectedAt: number; kept: boolean }[];
}

const list = async (): Promise<Listing> =>
  (await (
    await fetch(`${dashboard.url}api/queues/${QUEUE}/dead-letters`, { headers: auth })
  ).json()) as Listing;

const queueCount = async (): Promise<number | null> => {
  const overview = (await (
    await fetch(`${dashboard.url}api/overview`, { headers: auth })
  ).json()) as {
    queues: { name: string; deadLetters: number | null }[];
  };
  return overview.queues.find((q) => q.name === QUEUE)?.deadLetters ?? null;
};

const post = (name: string, body: unknown, headers: Record<string, string> = page) =>
  fetch(`${dashboard.url}api/actions/${name}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });

it("lists, counts, replays and purges a queue's dead letters", async () => {
  shutGates.add("one").add("two");
  const one = await client.sendTask("dash.gated", { args: ["one"], queue: QUEUE });
  const two = await client.sendTask("dash.gated", { args: ["two"], queue: QUEUE });
  await expect.poll(async () => (await list()).letters.length, { timeout: 10_000 }).toBe(2);
  const { letters } = await list();
  expect(letters.map((l) => l.taskId).sort()).toEqual([one.id, two.id].sort());
  expect(letters.find((l) => l.taskId === one.id)).toMatchObject({
    name: "dash.gated",
    reason: expect.stringContaining("gate one is shut") as string,
    kept: true,
  });
  await expect.poll(queueCount, { timeout: 10_000 }).toBe(2);

  // Refused without the credentials, and without the page's header: the letters stay.
  const body = { queue: QUEUE };
  expect((await post("purgeDeadLetters", body, { "x-celery-ts-dashboard": "1" })).status).toBe(401);
  expect((await post("replayDeadLetters", body, auth)).status).toBe(403);
  expect((await fetch(`${dashboard.url}api/queues/${QUEUE}/dead-letters`)).status).toBe(401);
  expect((await post("replayDeadLetters", { queue: "no such/queue" })).status).toBe(400);
  const badName = await fetch(`${dashboard.url}api/queues/a%20b/dead-letters`, { headers: auth });
  expect(badName.status).toBe(400);
  expect((await list()).letters).toHaveLength(2);

  // Replayed once its gate is open, the task of `one` runs; `two` stays dead.
  shutGates.delete("one");
  const replayed = await post("replayDeadLetters", { queue: QUEUE, taskId: one.id });
  expect(await replayed.json()).toMatchObject({
    ok: true,
    message: `put 1 dead letter of task ${one.id} back on ${QUEUE}`,
  });
  expect(await one.get({ timeout: 10 })).toBe("passed one");
  expect((await list()).letters.map((l) => l.taskId)).toEqual([two.id]);
  expect(await queueCount()).toBe(1);

  const purged = await post("purgeDeadLetters", { queue: QUEUE });
  expect(await purged.json()).toMatchObject({
    ok: true,
    message: `deleted 1 dead letter from ${QUEUE}`,
  });
  expect((await list()).letters).toEqual([]);
  expect(await queueCount()).toBe(0);
});
