import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  defineTask,
  isCeleryTsError,
  type AnyTaskDefinition,
  type TaskFailedError,
} from "@celery-ts/core";
import { runPythonClient, startPythonWorker, type PythonWorker } from "@celery-ts/testing";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
// Not yet devDependencies of this package (see the README): imported from the workspace.
import { createClient, type Client } from "@celery-ts/client";
import { createWorker, type Worker } from "@celery-ts/worker";
import { createAmqpTransport, createRpcBackend } from "../src/index.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 });

// What Python Celery is configured with: the same broker, and Celery's rpc:// result backend.
const python = { brokerUrl: BROKER_URL, resultBackend: "rpc://" };

const admin = rabbitAdmin();
// Python workers declare Celery's remote-control exchange on the broker.
admin.trackSharedExchange("celery.pidbox");
const delayPrefix = unique("celery_ts.delay.interop");
admin.trackDelayTopology(delayPrefix);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => admin.cleanup());

async function pythonWorker(
  queue: string,
  env: Record<string, string> = {},
): Promise<PythonWorker> {
  admin.trackCeleryQueue(queue);
  const worker = await startPythonWorker({ ...python, queues: [queue], env });
  cleanups.push(async () => expect(await worker.stop()).toBe(0));
  return worker;
}

/** A celery-ts client on RabbitMQ with the rpc:// backend. */
function tsClient(): Client {
  const backend = createRpcBackend({ url: BROKER_URL });
  admin.trackQueue(backend.replyQueue);
  const transport = createAmqpTransport({ url: BROKER_URL, delayPrefix });
  const client = createClient({ broker: transport, backend });
  cleanups.push(async () => {
    await client.close();
    await Promise.all([transport.close(), backend.close()]);
  });
  return client;
}

const add = defineTask("interop.add", (a: number, b: number) => a + b);
const fail = defineTask("interop.fail", (message: string) => {
  throw Object.assign(new Error(message), { name: "ValueError" });
});
const echo = defineTask("interop.echo", (...args: unknown[]) => ({ args, kwargs: {} }));

/** A celery-ts worker on RabbitMQ, replying with the rpc:// backend. */
async function tsWorker(
  queue: string,
  tasks: AnyTaskDefinition[] = [add, fail, echo],
): Promise<Worker> {
  admin.trackCeleryQueue(queue);
  const backend = createRpcBackend({ url: BROKER_URL });
  admin.trackQueue(backend.replyQueue);
  const transport = createAmqpTransport({ url: BROKER_URL, delayPrefix });
  const worker = createWorker({
    broker: transport,
    backend,
    tasks,
    queues: [queue],
    concurrency: 4,
    shutdownTimeout: 5,
  });
  await worker.start();
  cleanups.push(async () => {
    await worker.stop();
    await Promise.all([transport.close(), backend.close()]);
  });
  return worker;
}

describe("celery-ts client -> Python Celery worker, results by rpc://", () => {
  it("runs tasks on the Python worker and reads their results and failures", async () => {
    const queue = unique("interop-py-worker");
    await pythonWorker(queue);
    const client = tsClient();
    const sum = await client.sendTask<number>("interop.add", { args: [2, 3], queue });
    expect(await sum.get({ timeout: 30 })).toBe(5);
    const echoed = await client.sendTask("interop.echo", {
      args: [1, "zwei", { drei: [3, null] }],
      kwargs: { é: "ü" },
      queue,
    });
    expect(await echoed.get({ timeout: 30 })).toEqual({
      args: [1, "zwei", { drei: [3, null] }],
      kwargs: { é: "ü" },
    });
    const failed = await client.sendTask("interop.fail", { args: ["boom"], queue });
    const error = (await failed.get({ timeout: 30, propagate: false })) as TaskFailedError;
    expect(isCeleryTsError(error, "TASK_FAILED")).toBe(true);
    expect(error).toMatchObject({
      excType: "ValueError",
      excMessage: "boom",
      excModule: "builtins",
    });
    expect(error.traceback).toMatch(/ValueError: boom/);
  });

  it("delivers a countdown task through the delay queues, not before it is due", async () => {
    const queue = unique("interop-py-countdown");
    await pythonWorker(queue);
    const client = tsClient();
    const sent = Date.now();
    const result = await client.sendTask<number>("interop.add", {
      args: [20, 22],
      queue,
      countdown: 1.5,
    });
    expect(await result.get({ timeout: 30 })).toBe(42);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(1_500);
  });
});

describe("Python Celery client -> celery-ts worker, results by rpc://", () => {
  it("runs the Python client's tasks and sends results to its reply queue", async () => {
    const queue = unique("interop-ts-worker");
    await tsWorker(queue);
    expect(
      await runPythonClient(python, {
        op: "apply_async",
        task: "interop.add",
        args: [2, 3],
        queue,
        timeout: 30,
      }),
    ).toMatchObject({ status: "SUCCESS", result: 5 });
    expect(
      await runPythonClient(python, {
        op: "apply_async",
        task: "interop.echo",
        args: [[1, null], "ü"],
        queue,
        timeout: 30,
      }),
    ).toMatchObject({ status: "SUCCESS", result: { args: [[1, null], "ü"], kwargs: {} } });
    const failure = await runPythonClient(python, {
      op: "apply_async",
      task: "interop.fail",
      args: ["boom"],
      queue,
      timeout: 30,
    });
    expect(failure).toMatchObject({
      status: "FAILURE",
      exc_type: "ValueError",
      exc_message: "boom",
    });
  });

  it("holds a Python countdown (its eta is only in the header) and runs it when due", async () => {
    const queue = unique("interop-ts-countdown");
    await tsWorker(queue);
    const started = Date.now();
    expect(
      await runPythonClient(python, {
        op: "apply_async",
        task: "interop.add",
        args: [1, 1],
        queue,
        countdown: 2,
        timeout: 30,
      }),
    ).toMatchObject({ status: "SUCCESS", result: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
  });
});

describe("a mixed fleet", () => {
  it("finishes a batch exactly once between a Python and a celery-ts worker on one queue", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celery-ts-amqp-fleet-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, "runs.log");
    writeFileSync(log, "");
    const queue = unique("interop-fleet");
    const record = defineTask("interop.record", async (n: number) => {
      appendFileSync(log, `${n} ts\n`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return n * 2;
    });
    await pythonWorker(queue, { INTEROP_LOG: log });
    await tsWorker(queue, [record]);
    const client = tsClient();
    const total = 60;
    const results = [];
    for (let n = 0; n < total; n++) {
      results.push(await client.sendTask<number>("interop.record", { args: [n], queue }));
    }
    const values = await Promise.all(results.map((result) => result.get({ timeout: 60 })));
    expect(values).toEqual(Array.from({ length: total }, (_, n) => n * 2));
    const runs = readFileSync(log, "utf8").split("\n").filter(Boolean);
    const byTask = new Map<number, string[]>();
    for (const line of runs) {
      const [n, who] = line.split(" ") as [string, string];
      byTask.set(Number(n), [...(byTask.get(Number(n)) ?? []), who]);
    }
    expect(byTask.size).toBe(total);
    expect([...byTask.values()].every((who) => who.length === 1)).toBe(true);
    // Both really worked on the batch.
    const workers = new Set(runs.map((line) => line.split(" ")[1]));
    expect(workers).toEqual(new Set(["python", "ts"]));
  });
});
