import { join } from "node:path";
import {
  runPythonCeleryCli,
  runPythonControl,
  startPythonWorker,
  testServers,
  type PythonWorker,
} from "@celery-ts/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
// Not yet devDependencies of this package (see the README): imported from the workspace.
import { createClient, type Client } from "@celery-ts/client";
import type { Worker } from "@celery-ts/worker";
import {
  eventually,
  mixedFleetEvents,
  runTsCli,
  seen,
  startTsWorker,
} from "../../redis/test/support/control-fleet.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";

// RabbitMQ as the broker (and for remote control and events), Redis (the run's database) for results.
vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 });
const REDIS_URL = testServers().redisUrl;
const config = { brokerUrl: BROKER_URL, resultBackend: REDIS_URL };
const PACKAGE_DIR = join(import.meta.dirname, "..");

const admin = rabbitAdmin();
for (const shared of ["celery.pidbox", "reply.celery.pidbox", "celeryev"]) {
  admin.trackSharedExchange(shared);
}
let python: PythonWorker;
const pythonQueue = unique("control-python");
admin.trackCeleryQueue(pythonQueue);
let client: Client;
const workers: Worker[] = [];

function tsWorker(queue: string, options: Parameters<typeof startTsWorker>[2] = {}): Worker {
  admin.trackCeleryQueue(queue);
  const worker = startTsWorker(BROKER_URL, [queue], { backend: REDIS_URL, ...options });
  workers.push(worker);
  return worker;
}

beforeAll(async () => {
  client = createClient({ broker: BROKER_URL, backend: REDIS_URL });
  python = await startPythonWorker({ ...config, queues: [pythonQueue], events: true });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await python?.stop();
  await client?.close();
  await admin.cleanup();
});

describe("remote control on RabbitMQ, with Python Celery", () => {
  it("Python's status, inspect and control see and steer a TS worker", async () => {
    const worker = tsWorker(unique("control-steer"));
    await worker.start();
    const node = worker.hostname;
    const status = await runPythonCeleryCli(config, ["status", "-d", node]);
    expect(status.output).toContain(`${node}: OK`);
    const call = (method: string, args: Record<string, unknown> = {}) => ({
      op: "broadcast",
      method,
      arguments: args,
      destination: [node],
      timeout: 2,
    });
    const replies = (await runPythonControl(config, {
      op: "batch",
      commands: [call("ping"), call("registered"), call("pool_shrink", { n: 2 }), call("stats")],
    })) as Record<string, unknown>[][];
    expect(replies.map((r) => r[0]?.[node])).toEqual([
      { ok: "pong" },
      ["control.add", "control.sleep"],
      { ok: "pool will shrink" },
      expect.objectContaining({ pool: expect.objectContaining({ "max-concurrency": 48 }) }),
    ]);
  });

  it("revoke with terminate from Python stops a running TS task", async () => {
    const queue = unique("control-terminate");
    const worker = tsWorker(queue);
    await worker.start();
    const result = await client.sendTask("control.sleep", { args: [60_000], queue });
    await eventually(() => seen.ran.has(result.id), "the task to start");
    await runPythonControl(config, { op: "revoke", id: result.id, terminate: true });
    await expect(result.get({ timeout: 20 })).rejects.toMatchObject({ code: "TASK_REVOKED" });
    expect(seen.aborted.has(result.id)).toBe(true);
  });

  it("celery-ts's CLI inspects and steers the Python worker", async () => {
    const b = ["-b", BROKER_URL];
    const ping = await runTsCli(["inspect", "ping", ...b, "-d", python.nodeName], PACKAGE_DIR);
    expect(ping.stdout).toContain(`->  ${python.nodeName}: OK`);
    expect(ping.stdout).toContain("pong");
    const queues = await runTsCli(
      ["inspect", "active_queues", ...b, "-d", python.nodeName, "--json"],
      PACKAGE_DIR,
    );
    expect(JSON.parse(queues.stdout)).toEqual({
      [python.nodeName]: [expect.objectContaining({ name: pythonQueue })],
    });
    const events = await runTsCli(
      ["control", "enable_events", ...b, "-d", python.nodeName],
      PACKAGE_DIR,
    );
    expect(events.stdout).toContain("task events already enabled");
  });

  it("a mixed fleet's events reach Python's receiver and ours", async () => {
    const queue = unique("control-events");
    const worker = tsWorker(queue, { taskEvents: true });
    await worker.start();
    const receiver = unique("python-receiver");
    admin.trackQueue(`celeryev.${receiver}`);
    await mixedFleetEvents({
      config,
      client,
      ts: { hostname: worker.hostname, queue },
      python: { nodeName: python.nodeName, queue: pythonQueue },
      receiver,
      listening: () => admin.queueExists(`celeryev.${receiver}`),
    });
  });
});
