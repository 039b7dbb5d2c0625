import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callControl, resolveBroadcast } from "@celery-ts/core";
import {
  runPythonCeleryCli,
  runPythonClient,
  runPythonControl,
  secondRedisUrl,
  startPythonWorker,
  type PythonWorker,
} from "@celery-ts/testing";
import { createClient, type Client } from "@celery-ts/client";
import type { Worker } from "@celery-ts/worker";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  mixedFleetEvents,
  runTsCli,
  seen,
  startTsWorker,
} from "./support/control-fleet.ts";
import { REDIS_URL } from "./support/redis.ts";

// The run's second database (its own + 8, see docs/testing.md): kombu's pidbox and event channels
// are named after the database (/8.celery.pidbox), and on the run's own database every worker of
// the other test files would hear these broadcasts and send its events to these receivers.
const URL = secondRedisUrl(REDIS_URL);
const config = { brokerUrl: URL, resultBackend: URL };
const dir = mkdtempSync(join(tmpdir(), "celery-ts-control-"));
const queue = (label: string): string => `control-${label}-${randomUUID()}`;

let python: PythonWorker;
const pythonQueue = queue("python");
let client: Client;
const workers: Worker[] = [];

function tsWorker(...args: Parameters<typeof startTsWorker>): Worker {
  const worker = startTsWorker(...args);
  workers.push(worker);
  return worker;
}

beforeAll(async () => {
  client = createClient({ broker: URL, backend: URL });
  python = await startPythonWorker({ ...config, queues: [pythonQueue], events: true });
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await python?.stop();
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("Python's celery inspect, control and status on a TypeScript worker (Redis)", () => {
  it("see it, list its tasks, and steer it", async () => {
    const q = queue("steer");
    const worker = tsWorker(URL, [q]);
    await worker.start();
    const node = worker.hostname;

    const status = await runPythonCeleryCli(config, ["status", "-d", node]);
    expect(status.output).toContain(`${node}: OK`);
    expect(status.output).toContain("1 node online");
    const registered = await runPythonCeleryCli(config, ["inspect", "registered", "-d", node]);
    expect(registered.output).toContain("* control.add");
    expect(registered.output).toContain("* control.sleep");

    const call = (method: string, args: Record<string, unknown> = {}) => ({
      op: "broadcast",
      method,
      arguments: args,
      destination: [node],
      timeout: 2,
    });
    const q2 = queue("added");
    const replies = (await runPythonControl(config, {
      op: "batch",
      commands: [
        call("ping"),
        call("stats"),
        call("active_queues"),
        call("rate_limit", { task_name: "control.add", rate_limit: "10/s" }),
        call("time_limit", { task_name: "control.add", soft: 5, hard: 10 }),
        call("pool_grow", { n: 2 }),
        call("add_consumer", { queue: q2 }),
        call("enable_events"),
        call("registered"),
        call("conf"),
        call("no_such_command"),
      ],
    })) as Record<string, unknown>[][];
    const answer = (i: number): unknown => replies[i]?.[0]?.[node];
    expect(answer(0)).toEqual({ ok: "pong" });
    expect(answer(1)).toMatchObject({ pid: process.pid, pool: { "max-concurrency": 50 } });
    expect(answer(2)).toEqual([expect.objectContaining({ name: q, routing_key: q })]);
    expect(answer(3)).toEqual({ ok: "new rate limit set successfully" });
    expect(answer(4)).toEqual({ ok: "time limits set successfully" });
    expect(answer(5)).toEqual({ ok: "pool will grow" });
    expect(answer(6)).toEqual({ ok: `add consumer ${q2}` });
    expect(answer(7)).toEqual({ ok: "task events enabled" });
    expect(answer(8)).toEqual(["control.add [rate_limit=10/s]", "control.sleep"]);
    expect(answer(9)).toMatchObject({ worker_concurrency: 52, broker_url: URL });
    expect(answer(10)).toEqual({ error: expect.stringContaining("no_such_command") });

    // The added queue is consumed; the grown pool shows in stats.
    const result = await client.sendTask("control.add", { args: [2, 3], queue: q2 });
    await expect(result.get({ timeout: 20 })).resolves.toBe(5);
    const [stats] = await runPythonControl(config, call("stats")).then((r) => r as unknown[]);
    expect(stats).toMatchObject({ [node]: { prefetch_count: 65, total: { "control.add": 1 } } });
  }, 90_000);

  it("show a running task in inspect active and query_task", async () => {
    const q = queue("active");
    const worker = tsWorker(URL, [q]);
    await worker.start();
    const result = await client.sendTask("control.sleep", { args: [30_000], queue: q });
    await eventually(() => seen.ran.has(result.id), "the task to start");
    const [active, query] = (await runPythonControl(config, {
      op: "batch",
      commands: [
        { op: "broadcast", method: "active", destination: [worker.hostname], timeout: 2 },
        {
          op: "broadcast",
          method: "query_task",
          arguments: { ids: [result.id] },
          destination: [worker.hostname],
          timeout: 2,
        },
      ],
    })) as Record<string, unknown>[][];
    expect(active?.[0]?.[worker.hostname]).toEqual([
      expect.objectContaining({ id: result.id, name: "control.sleep", args: [30_000] }),
    ]);
    expect(query?.[0]?.[worker.hostname]).toEqual({
      [result.id]: ["active", expect.objectContaining({ id: result.id })],
    });
    await result.revoke({ terminate: true });
    await expect(result.get({ timeout: 20 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
  }, 60_000);
});

describe("revoke (Redis)", () => {
  it("from Python with terminate: the running TS task's signal fires and it is stored REVOKED", async () => {
    const q = queue("terminate");
    const worker = tsWorker(URL, [q]);
    await worker.start();
    const result = await client.sendTask("control.sleep", { args: [60_000], queue: q });
    await eventually(() => seen.ran.has(result.id), "the task to start");
    await runPythonControl(config, { op: "revoke", id: result.id, terminate: true });
    await expect(result.get({ timeout: 20 })).rejects.toMatchObject({
      code: "TASK_REVOKED",
      message: expect.stringContaining("terminated"),
    });
    expect(seen.aborted.has(result.id)).toBe(true);
  }, 60_000);

  it("from Python before it arrives: the TS worker never runs it", async () => {
    const q = queue("early");
    const worker = tsWorker(URL, [q]);
    await worker.start();
    const id = randomUUID();
    await runPythonControl(config, { op: "revoke", id, destination: [worker.hostname] });
    const revoked = await eventually(
      () =>
        resolveBroadcast(URL).then(async (b) => {
          const replies = await callControl(b, "revoked", {}, { destination: [worker.hostname] });
          await b.close();
          return (replies[0]?.[worker.hostname] as string[] | undefined)?.includes(id);
        }),
      "the revoke to reach the worker",
    );
    expect(revoked).toBe(true);
    const result = await client.sendTask("control.add", { args: [1, 1], queue: q, taskId: id });
    await expect(result.get({ timeout: 20 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
    expect(seen.ran.has(id)).toBe(false);
    expect(await result.status()).toBe("REVOKED");
  }, 60_000);

  it("from the TS client reaches a Python worker", async () => {
    const result = await client.sendTask("interop.add", {
      args: [1, 2],
      queue: pythonQueue,
      countdown: 3,
    });
    await result.revoke();
    await expect(result.get({ timeout: 30 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
  }, 60_000);

  it("survives a restart with a state file, and reaches a worker started later (mingle)", async () => {
    const q = queue("statedb");
    const stateDb = join(dir, "state.json");
    const first = tsWorker(URL, [q], { stateDb });
    await first.start();
    const id = randomUUID();
    await client.control.revoke(id);
    await eventually(async () => {
      const replies = await client.control.call("revoked", {}, { destination: [first.hostname] });
      return (replies[0]?.[first.hostname] as string[] | undefined)?.includes(id);
    }, "the revoke to reach the first worker");
    await first.stop();

    // No other worker knows it (the restarted one must get it from its file)...
    const restarted = tsWorker(URL, [q], { stateDb, hostname: first.hostname });
    await restarted.start();
    const revoked = await client.control.call("revoked", {}, { destination: [restarted.hostname] });
    expect(revoked[0]?.[restarted.hostname]).toContain(id);
    // ...and a newcomer learns it from the running ones. Mingle asks once, at start, and takes the
    // replies of Celery's one-second window, which a loaded machine's reply can miss: up to three
    // newcomers are started; one that learns it proves mingle, none fails the test.
    let learned = false;
    for (let attempt = 0; attempt < 3 && !learned; attempt++) {
      const newcomer = tsWorker(URL, [queue("newcomer")]);
      await newcomer.start();
      learned = await eventually(
        async () => {
          const replies = await client.control.call(
            "revoked",
            {},
            { destination: [newcomer.hostname] },
          );
          return (replies[0]?.[newcomer.hostname] as string[] | undefined)?.includes(id);
        },
        "the newcomer to learn the revoke",
        10_000,
      ).catch(() => false);
    }
    expect(learned).toBe(true);
    const result = await client.sendTask("control.add", { args: [1, 1], queue: q, taskId: id });
    await expect(result.get({ timeout: 20 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
    expect(seen.ran.has(id)).toBe(false);
  }, 120_000);
});

describe("unknown task names (Redis)", () => {
  it("store NotRegistered, so get() rejects at once naming the task", async () => {
    const q = queue("unknown");
    const worker = tsWorker(URL, [q]);
    await worker.start();
    const result = await client.sendTask("control.no_such_task", { queue: q });
    const error = await result.get({ timeout: 20 }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "TASK_FAILED",
      excType: "NotRegistered",
      excModule: "celery.exceptions",
      message: expect.stringContaining("control.no_such_task"),
    });
    const fromPython = await runPythonClient(config, { op: "get", id: result.id, timeout: 5 });
    expect(fromPython).toMatchObject({ status: "FAILURE", exc_type: "NotRegistered" });
  }, 60_000);
});

describe("celery-ts's CLI on a Python worker (Redis)", () => {
  it("status, inspect, control, call and result", async () => {
    const b = ["-b", URL];
    const status = await runTsCli(["status", ...b, "-d", python.nodeName]);
    expect(status.stdout).toContain(`->  ${python.nodeName}: OK`);
    expect(status.stdout).toContain("1 node online.");
    const registered = await runTsCli(["inspect", "registered", ...b, "-d", python.nodeName]);
    expect(registered.stdout).toContain("* interop.add");
    const stats = await runTsCli(["inspect", "stats", ...b, "-d", python.nodeName, "--json"]);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      [python.nodeName]: { pid: expect.any(Number) },
    });
    const rate = await runTsCli([
      "control",
      "rate_limit",
      "interop.add",
      "100/m",
      ...b,
      "-d",
      python.nodeName,
    ]);
    expect(rate.stdout).toContain("new rate limit set successfully");
    const sent = await runTsCli([
      "call",
      "interop.add",
      "--args",
      "[20, 22]",
      "--queue",
      pythonQueue,
      ...b,
    ]);
    const id = sent.stdout.trim();
    const shown = await runTsCli(["result", id, "--backend", URL, "--timeout", "30"]);
    expect(shown.stdout.trim()).toBe("42");
    const none = await runTsCli(["status", ...b, "-d", "nobody@nowhere"]);
    expect(none.code).toBe(69);
    expect(none.stderr).toContain("No nodes replied");
  }, 90_000);
});

describe("events of a mixed fleet (Redis)", () => {
  it("Python's event receiver sees the TS worker, and ours sees the Python worker", async () => {
    const q = queue("events");
    const worker = tsWorker(URL, [q], { taskEvents: true });
    await worker.start();
    const redis = new Redis(URL);
    // Python's receiver binds the queue celeryev.<node_id>: waiting for that binding (not any new
    // one) keeps other receivers of the run's database from satisfying the wait.
    const receiver = `python-receiver-${randomUUID()}`;
    try {
      const { theirs, ours, tsTaskId } = await mixedFleetEvents({
        config,
        client,
        ts: { hostname: worker.hostname, queue: q },
        python: { nodeName: python.nodeName, queue: pythonQueue },
        receiver,
        listening: async () =>
          (await redis.smembers("_kombu.binding.celeryev")).some((member) =>
            member.endsWith(`celeryev.${receiver}`),
          ),
      });
      const succeeded = theirs.find((e) => e.type === "task-succeeded" && e.uuid === tsTaskId);
      expect(succeeded).toMatchObject({ result: "3", runtime: expect.any(Number) });
      const beat = ours.find(
        (e) => e.hostname === worker.hostname && e.type === "worker-heartbeat",
      );
      expect(beat).toMatchObject({ freq: 2, sw_ident: "celery-ts", active: expect.any(Number) });
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});
