import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  callControl,
  createTaskMessage,
  currentTask,
  defineTask,
  encodeTaskMessage,
  isAddressedTo,
  receiveEvents,
  resolveBroadcast,
  resolveTransport,
  topicMatches,
  type Broadcast,
  type CeleryEvent,
} from "@celery-ts/core";
import { createClient } from "@celery-ts/client";
import { waitUntil } from "@celery-ts/testing";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { mergeRevoked } from "../src/control/commands.ts";
import { RevokedSet } from "../src/control/revoked.ts";
import { createWorker, type Worker } from "../src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "celery-ts-control-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ran = new Set<string>();
const aborted = new Set<string>();
const ticks: number[] = [];
const tasks = [
  defineTask("t.add", (a: number, b: number) => {
    ran.add(currentTask().id);
    return a + b;
  }),
  defineTask("t.tick", () => void ticks.push(performance.now())),
  defineTask("t.wait", async () => {
    const { id, signal } = currentTask();
    ran.add(id);
    await new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => {
        aborted.add(id);
        resolve();
      }),
    );
  }),
];

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fleet(url = `memory://control-${randomUUID()}`, options = {}) {
  const worker: Worker = createWorker({
    broker: url,
    backend: url,
    tasks,
    hostname: `unit-${randomUUID().slice(0, 6)}@test`,
    ...options,
  });
  await worker.start();
  const client = createClient({ broker: url, backend: url });
  const broadcast: Broadcast = await resolveBroadcast(url);
  cleanups.push(
    () => worker.stop(),
    () => client.close(),
    () => broadcast.close(),
  );
  return { worker, client, broadcast };
}

/** The events published on the broker `url` from now on, as a receiver gets them. */
async function eventsOf(url: string): Promise<CeleryEvent[]> {
  const events: CeleryEvent[] = [];
  const listener = await resolveBroadcast(url);
  const subscription = await receiveEvents(listener, (event) => events.push(event));
  cleanups.push(
    () => listener.close(),
    () => subscription.close(),
  );
  return events;
}

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("remote control (memory broker)", () => {
  it("answers addressed commands only, with Celery's reply shapes", async () => {
    const { worker, broadcast } = await fleet();
    const node = worker.hostname;
    expect(await callControl(broadcast, "ping", {}, { destination: [node] })).toEqual([
      { [node]: { ok: "pong" } },
    ]);
    expect(
      await callControl(broadcast, "ping", {}, { destination: ["other@x"], timeout: 0.2 }),
    ).toEqual([]);
    const [registered] = await callControl(broadcast, "dump_tasks", {}, { destination: [node] });
    expect(registered).toEqual({ [node]: ["t.add", "t.tick", "t.wait"] });
    const [shrunk] = await callControl(
      broadcast,
      "pool_shrink",
      { n: 100 },
      { destination: [node] },
    );
    expect(shrunk?.[node]).toEqual({ error: expect.stringContaining("at least 1") });
  });

  it("pool_grow and pool_shrink move the prefetch with the pool, as the default or the set one", async () => {
    const prefetchAfter = async (options: object, command: string, n: number) => {
      const { worker, broadcast } = await fleet(undefined, { concurrency: 8, ...options });
      const node = worker.hostname;
      await callControl(broadcast, command, { n }, { destination: [node] });
      const [stats] = await callControl(broadcast, "stats", {}, { destination: [node] });
      return (stats?.[node] as { prefetch_count: number }).prefetch_count;
    };
    // The default prefetch: the concurrency + max(4, a quarter): 40 + 10, then 4 + 4.
    expect(await prefetchAfter({}, "pool_grow", 32)).toBe(50);
    expect(await prefetchAfter({}, "pool_shrink", 4)).toBe(8);
    // A prefetch the user set moves by n.
    expect(await prefetchAfter({ prefetch: 20 }, "pool_grow", 2)).toBe(22);
  });

  it("pool_grow keeps the prefetch held for ETA messages, which is given back when they run", async () => {
    const url = `memory://control-${randomUUID()}`;
    const { worker, client, broadcast } = await fleet(url, { concurrency: 2 });
    const node = worker.hostname;
    const prefetch = async () => {
      const [stats] = await callControl(broadcast, "stats", {}, { destination: [node] });
      return (stats?.[node] as { prefetch_count: number }).prefetch_count;
    };
    // Delivered at once with an eta a second ahead (as from a broker without delayed delivery),
    // the worker holds them: three messages raise its prefetch (2 + 4) by three.
    const producer = await resolveTransport(url);
    cleanups.push(() => producer.close());
    const eta = new Date(Date.now() + 1_000);
    const ids = await Promise.all(
      [1, 2, 3].map(async (n) => {
        const message = createTaskMessage({ task: "t.add", args: [n, 0], eta });
        await producer.publish(encodeTaskMessage(message), { queue: "celery" });
        return message.headers.id;
      }),
    );
    await waitUntil(async () => (await prefetch()) === 9, {
      timeoutMs: 5_000,
      what: "the three ETA messages to be held",
    });
    await callControl(broadcast, "pool_grow", { n: 1 }, { destination: [node] });
    expect(await prefetch()).toBe(10);
    for (const id of ids) await client.asyncResult(id).get({ timeout: 10 });
    expect(await prefetch()).toBe(7);
    const now = await client.sendTask("t.add", { args: [4, 0] });
    expect(await now.get({ timeout: 5 })).toBe(4);
  });

  it("revokes: a revoked task never runs; terminate fires the running task's signal", async () => {
    const { client } = await fleet();
    const id = randomUUID();
    await client.control.revoke(id);
    const early = await client.sendTask("t.add", { args: [1, 2], taskId: id });
    await expect(early.get({ timeout: 5 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
    expect(ran.has(id)).toBe(false);

    const running = await client.sendTask("t.wait");
    await until(() => ran.has(running.id), "the task to start");
    await running.revoke({ terminate: true });
    await expect(running.get({ timeout: 5 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
    expect(aborted.has(running.id)).toBe(true);
  });

  it("rate_limit slows the task down on the worker (its rate limiter applies it)", async () => {
    const { worker, client } = await fleet();
    const node = worker.hostname;
    const rateLimit = (rate: unknown) =>
      client.control.call(
        "rate_limit",
        { task_name: "t.tick", rate_limit: rate },
        { destination: [node] },
      );
    expect(await rateLimit("often")).toEqual([
      { [node]: { error: expect.stringMatching(/^Invalid rate limit string: .*not a rate/) } },
    ]);
    expect(await rateLimit("5/s")).toEqual([{ [node]: { ok: "new rate limit set successfully" } }]);
    const [registered] = await client.control.call("registered", {}, { destination: [node] });
    expect(registered?.[node]).toContain("t.tick [rate_limit=5/s]");

    ticks.length = 0;
    const slow = await Promise.all(Array.from({ length: 4 }, () => client.sendTask("t.tick")));
    await Promise.all(slow.map((result) => result.get({ timeout: 10 })));
    // 5/s releases one run per 200 ms: four runs span at least 600 ms (a lower bound, so load
    // cannot fail it; without the limit they run at once).
    expect(ticks.at(-1)! - ticks[0]!).toBeGreaterThanOrEqual(540);

    expect(await rateLimit("")).toEqual([{ [node]: { ok: "rate limit disabled successfully" } }]);
    const [cleared] = await client.control.call("registered", {}, { destination: [node] });
    expect(cleared?.[node]).toContain("t.tick");
    expect(cleared?.[node]).not.toContain("t.tick [rate_limit=5/s]");
  });

  it("stores NotRegistered for an unknown task name", async () => {
    const { client } = await fleet();
    const result = await client.sendTask("t.unknown");
    await expect(result.get({ timeout: 5 })).rejects.toMatchObject({
      excType: "NotRegistered",
      message: expect.stringContaining("t.unknown"),
    });
  });

  it("sends worker events always and task events once enabled", async () => {
    const url = `memory://events-${randomUUID()}`;
    const events = await eventsOf(url);
    const { worker, client, broadcast } = await fleet(url);
    const first = await client.sendTask("t.add", { args: [1, 1] });
    await first.get({ timeout: 5 });
    await until(() => events.some((e) => e.type === "worker-online"), "worker-online");
    expect(events.filter((e) => e.type.startsWith("task-"))).toEqual([]);
    await callControl(broadcast, "enable_events", {}, { destination: [worker.hostname] });
    const second = await client.sendTask("t.add", { args: [2, 2] });
    await second.get({ timeout: 5 });
    const succeeded = (e: CeleryEvent): boolean =>
      e.type === "task-succeeded" && e.uuid === second.id;
    await until(() => events.some(succeeded), "task-succeeded");
    const mine = events.filter((e) => e.uuid === second.id).map((e) => e.type);
    expect(mine).toEqual(["task-received", "task-started", "task-succeeded"]);
    // The first task, received before enable_events, stayed silent to its end.
    expect(events.filter((e) => e.uuid === first.id)).toEqual([]);
    expect(events.find(succeeded)).toMatchObject({
      hostname: worker.hostname,
      result: "4",
      pid: process.pid,
      clock: expect.any(Number),
      utcoffset: expect.any(Number),
    });
  });

  it("sends no event for a task received before enable_events, even when it ends after", async () => {
    const url = `memory://late-${randomUUID()}`;
    const events = await eventsOf(url);
    const { worker, client, broadcast } = await fleet(url);
    const early = await client.sendTask("t.wait");
    await until(() => ran.has(early.id), "the first task to start");
    await callControl(broadcast, "enable_events", {}, { destination: [worker.hostname] });
    // It ends now, with events on: its task-revoked would name a task no receiver saw arrive.
    await early.revoke({ terminate: true });
    await expect(early.get({ timeout: 5 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
    const later = await client.sendTask("t.add", { args: [2, 3] });
    await later.get({ timeout: 5 });
    // Events go out in the order they happen: once the later task's last one is here, the first
    // task's would be too.
    await until(
      () => events.some((e) => e.type === "task-succeeded" && e.uuid === later.id),
      "the later task's task-succeeded",
    );
    expect(events.filter((e) => e.uuid === early.id)).toEqual([]);
  });
});

describe("task-sent events", () => {
  it("are sent by a client with sendTaskEvents", async () => {
    const url = `memory://sent-${randomUUID()}`;
    const events = await eventsOf(url);
    const client = createClient({ broker: url, sendTaskEvents: true });
    cleanups.push(() => client.close());
    const result = await client.sendTask("t.add", { args: [1, 2], queue: "q" });
    await until(() => events.some((e) => e.type === "task-sent"), "task-sent");
    expect(events.find((e) => e.type === "task-sent")).toMatchObject({
      uuid: result.id,
      name: "t.add",
      args: "(1, 2)",
      queue: "q",
      hostname: expect.stringMatching(/^gen\d+@/),
    });
  });
});

describe("remote control on SQLite", () => {
  it("celery-ts status and inspect reach a worker through the database file", async () => {
    const url = `sqlite:///${join(dir, `control-${randomUUID()}.db`)}`;
    const { worker } = await fleet(url);
    const cli = join(import.meta.dirname, "../src/cli.ts");
    const output = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, [cli, "inspect", "registered", "-b", url, "-t", "3"], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
      child.on("exit", () => resolve(out));
    });
    expect(output).toContain(`->  ${worker.hostname}: OK`);
    expect(output).toContain("* t.add");
  }, 30_000);
});

describe("revoked ids", () => {
  it("are bounded in number and age, and kept in the state file", () => {
    const statePath = join(dir, `state-${randomUUID()}.json`);
    const set = new RevokedSet({ maxSize: 3, expires: 60, statePath });
    set.add(["a", "b", "c", "d"]);
    expect(set.ids()).toEqual(["b", "c", "d"]);
    set.add(["old"], Date.now() - 61_000);
    expect(set.has("old")).toBe(false);
    set.flush();
    expect(set.ids()).toEqual(["b", "c", "d"]);
    expect(new RevokedSet({ statePath }).ids()).toEqual(["b", "c", "d"]);
  });

  it("learned in mingle are never forgotten for another worker's clock", () => {
    const set = new RevokedSet({ expires: 60 });
    set.add(["known"]);
    // Python Celery stamps its LimitedSet with time.monotonic(): seconds since its machine booted.
    mergeRevoked(set, { known: [1234.5, "known"], fromPython: [1234.5, "fromPython"] });
    mergeRevoked(set, { old: (Date.now() - 61_000) / 1000, listed: 1 });
    mergeRevoked(set, ["plain"]);
    expect(set.ids().sort()).toEqual(["fromPython", "known", "listed", "plain"]);
    const sent = Object.values(set.entries());
    expect(sent.every((at) => !Number.isInteger(at) && Math.abs(at - Date.now() / 1000) < 5)).toBe(
      true,
    );
  });
});

describe("kombu's routing rules", () => {
  it("match topic binding keys as AMQP does", () => {
    expect(topicMatches("#", "task.succeeded")).toBe(true);
    expect(topicMatches("task.#", "task.succeeded")).toBe(true);
    expect(topicMatches("task.*", "task.succeeded")).toBe(true);
    expect(topicMatches("worker.*", "task.succeeded")).toBe(false);
    expect(topicMatches("*.succeeded.#", "task.succeeded")).toBe(true);
    expect(topicMatches("task.*", "task")).toBe(false);
  });

  it("address pidbox commands by destination, glob or pcre pattern", () => {
    const request = {
      method: "ping",
      arguments: {},
      destination: null,
      pattern: null,
      matcher: null,
    };
    expect(isAddressedTo(request, "a@h")).toBe(true);
    expect(isAddressedTo({ ...request, destination: ["b@h"] }, "a@h")).toBe(false);
    expect(isAddressedTo({ ...request, pattern: "a*", matcher: "glob" }, "a@h")).toBe(true);
    expect(isAddressedTo({ ...request, pattern: "^b", matcher: "pcre" }, "a@h")).toBe(false);
  });
});
