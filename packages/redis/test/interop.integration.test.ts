import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCeleryTsError } from "@celery-ts/core";
import {
  runPythonClient,
  startPythonWorker,
  type PythonCallOutcome,
  type PythonWorker,
} from "@celery-ts/testing";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
// Not yet devDependencies of this package: imported from the workspace by path.
import {
  createClient,
  type AsyncResult,
  type Client,
  type SendTaskOptions,
} from "@celery-ts/client";
import { createWorker, type Worker } from "@celery-ts/worker";
import { interopTasks } from "./fixtures/interop-tasks.ts";
import { REDIS_URL } from "./support/redis.ts";

// The run's database (CELERY_TS_REDIS_URL). Python's delay() goes to its default queue, which
// here has a name of its own (CELERY_TASK_DEFAULT_QUEUE): the python-interop example, in the same
// database, uses "celery". kombu's unacked hash has a fixed name, and both sides use kombu's
// default visibility timeout (one hour), so nothing is restored behind another test.
const URL = REDIS_URL;
const DEFAULT_QUEUE = `interop-default-${randomUUID()}`;
const config = {
  brokerUrl: URL,
  resultBackend: URL,
  env: { CELERY_TASK_DEFAULT_QUEUE: DEFAULT_QUEUE },
};
const SEP = "\x06\x16";
const raw = new Redis(URL);
const dir = mkdtempSync(join(tmpdir(), "celery-ts-interop-"));

/** What the tests leave in Redis: their queues' lists and declarations, their results. */
const queues: string[] = [];
const taskIds: string[] = [];
const newQueue = (label: string): string => {
  const queue = `interop-${label}-${randomUUID()}`;
  queues.push(queue);
  return queue;
};

afterAll(async () => {
  const keys = [
    ...queues.flatMap((q) => [
      q,
      `${q}${SEP}3`,
      `${q}${SEP}6`,
      `${q}${SEP}9`,
      `_kombu.binding.${q}`,
    ]),
    ...taskIds.map((id) => `celery-task-meta-${id}`),
  ];
  for (let i = 0; i < keys.length; i += 500) await raw.del(...keys.slice(i, i + 500));
  await raw.quit();
  rmSync(dir, { recursive: true, force: true });
});

function tsClient(): Client {
  return createClient({ broker: URL, backend: URL });
}

/** `send(client, )`, its task id remembered. */
async function send<R = unknown>(
  client: Client,
  name: string,
  options: SendTaskOptions,
): Promise<AsyncResult<R>> {
  const result = await client.sendTask<R>(name, options);
  taskIds.push(result.id);
  return result;
}

/** A Python Celery client call, its task id remembered. */
async function python(command: Record<string, unknown>): Promise<PythonCallOutcome> {
  const outcome = await runPythonClient(config, command);
  taskIds.push(outcome.id);
  return outcome;
}

function tsWorker(queues: string[], logPath = join(dir, "unused.log"), concurrency = 4): Worker {
  return createWorker({
    broker: URL,
    backend: URL,
    tasks: interopTasks(logPath),
    queues,
    concurrency,
    hostname: `celery-ts-interop@${process.pid}`,
  });
}

describe("a celery-ts client and a Python Celery worker", () => {
  it("sends args, kwargs, countdown and expires, and reads results and failures", async () => {
    const queue = newQueue("py-worker");
    const worker = await startPythonWorker({ ...config, queues: [queue] });
    const client = tsClient();
    try {
      const sum = await send<number>(client, "interop.add", { args: [2, 3], queue });
      expect(await sum.get({ timeout: 20 })).toBe(5);

      const echo = await send(client, "interop.echo", {
        args: [1, "zwei", { drei: [3] }],
        kwargs: { vier: 4, ü: "ö" },
        queue,
      });
      expect(await echo.get({ timeout: 20 })).toEqual({
        args: [1, "zwei", { drei: [3] }],
        kwargs: { vier: 4, ü: "ö" },
      });

      const sentAt = Date.now();
      const later = await send<number>(client, "interop.add", {
        args: [1, 1],
        countdown: 2,
        queue,
      });
      expect(await later.get({ timeout: 20 })).toBe(2);
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1_900);

      const fresh = await send<number>(client, "interop.add", {
        args: [4, 4],
        expires: 60,
        queue,
      });
      expect(await fresh.get({ timeout: 20 })).toBe(8);
      const stale = await send(client, "interop.add", {
        args: [4, 4],
        expires: new Date(Date.now() - 60_000),
        queue,
      });
      const revoked = await stale.get({ timeout: 20 }).catch((e: unknown) => e);
      expect(isCeleryTsError(revoked, "TASK_REVOKED")).toBe(true);
      expect(await stale.status()).toBe("REVOKED");

      const failing = await send(client, "interop.fail", { args: ["boom"], queue });
      const error = await failing.get({ timeout: 20 }).catch((e: unknown) => e);
      expect(isCeleryTsError(error, "TASK_FAILED")).toBe(true);
      expect(error).toMatchObject({
        name: "ValueError",
        excType: "ValueError",
        excMessage: "boom",
        excModule: "builtins",
      });
      expect((error as { traceback: string }).traceback).toMatch(/ValueError: boom/);
      expect(await failing.status()).toBe("FAILURE");
    } finally {
      await client.close();
      expect(await worker.stop()).toBe(0);
    }
  }, 90_000);
});

describe("a Python Celery client and a celery-ts worker", () => {
  it("runs delay() and apply_async(); Python's get() returns the TypeScript result or raises its failure", async () => {
    const queue = newQueue("ts-worker");
    // delay() goes to Python's default queue (DEFAULT_QUEUE): this worker reads it too.
    queues.push(DEFAULT_QUEUE);
    const worker = tsWorker([DEFAULT_QUEUE, queue]);
    await worker.start();
    try {
      expect(
        await python({
          op: "delay",
          task: "interop.add",
          args: [2, 3],
          timeout: 20,
        }),
      ).toMatchObject({
        status: "SUCCESS",
        result: 5,
      });
      expect(
        await python({
          op: "apply_async",
          task: "interop.echo",
          args: [1, "zwei"],
          kwargs: { drei: 3 },
          queue,
          timeout: 20,
        }),
      ).toMatchObject({ status: "SUCCESS", result: { args: [1, "zwei"], kwargs: { drei: 3 } } });
      const started = Date.now();
      expect(
        await python({
          op: "apply_async",
          task: "interop.add",
          args: [5, 6],
          countdown: 2,
          queue,
          timeout: 20,
        }),
      ).toMatchObject({ status: "SUCCESS", result: 11 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);

      // TypeScript failures reach Python as exceptions of the same type name and message.
      expect(
        await python({
          op: "apply_async",
          task: "interop.fail",
          args: ["boom"],
          queue,
          timeout: 20,
        }),
      ).toMatchObject({ status: "FAILURE", exc_type: "ValueError", exc_message: "boom" });
      expect(
        await python({
          op: "apply_async",
          task: "interop.type_error",
          args: ["x"],
          queue,
          timeout: 20,
        }),
      ).toMatchObject({
        status: "FAILURE",
        exc_type: "TypeError",
        exc_message: "x is not a number",
      });
      // Expired before it ran: REVOKED, which Python raises as TaskRevokedError.
      expect(
        await python({
          op: "apply_async",
          task: "interop.add",
          args: [1, 2],
          expires: -60,
          queue,
          timeout: 20,
        }),
      ).toMatchObject({ status: "REVOKED", exc_type: "TaskRevokedError" });
    } finally {
      await worker.stop();
    }
    expect(await raw.llen("celery")).toBe(0);
  }, 90_000);
});

describe("a mixed fleet", () => {
  it("finishes a batch exactly once with one Python and one celery-ts worker on one queue", async () => {
    const queue = newQueue("fleet");
    const logPath = join(dir, `fleet-${randomUUID()}.log`);
    writeFileSync(logPath, "");
    const python: PythonWorker = await startPythonWorker({
      ...config,
      queues: [queue],
      concurrency: 2,
      env: { INTEROP_LOG: logPath },
    });
    const worker = tsWorker([queue], logPath, 2);
    await worker.start();
    const client = tsClient();
    const total = 80;
    try {
      // The Python worker declared its queue; ours declared the very same entry.
      expect(await raw.smembers(`_kombu.binding.${queue}`)).toEqual([
        `${queue}${SEP}${SEP}${queue}`,
      ]);
      const results = await Promise.all(
        Array.from({ length: total }, (_, n) =>
          send<number>(client, "interop.record", { args: [n], queue }),
        ),
      );
      const values = await Promise.all(results.map((result) => result.get({ timeout: 60 })));
      expect(values).toEqual(Array.from({ length: total }, (_, n) => n * 2));
    } finally {
      await client.close();
      await worker.stop();
      expect(await python.stop()).toBe(0);
    }
    const lines = readFileSync(logPath, "utf8").trim().split("\n");
    const runs = lines.map((line) => Number(line.split(" ")[0]));
    expect(runs.sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, n) => n));
    const by = (who: string): number => lines.filter((line) => line.endsWith(` ${who}`)).length;
    expect(by("python")).toBeGreaterThan(0);
    expect(by("ts")).toBeGreaterThan(0);
    expect(by("python") + by("ts")).toBe(total);
    expect(await raw.llen(queue)).toBe(0);
  }, 120_000);
});
