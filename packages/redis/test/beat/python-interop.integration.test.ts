// Beat messages are Celery's: a Python Celery 5 worker runs what celery-ts beat sends, and a
// celery-ts worker runs what Python's `celery beat` sends, over Redis.
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineTask, silentLogger } from "@celery-ts/core";
import {
  PYTHON,
  spawnCollecting,
  startPythonWorker,
  testServers,
  waitUntil,
  type PythonWorker,
} from "@celery-ts/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createBeat, createWorker, type Beat, type Worker } from "@celery-ts/worker";
import { clearNamespace } from "./beat-process.ts";

vi.setConfig({ testTimeout: 90_000 });

const REDIS_URL = testServers().redisUrl;
const PYTHON_APP_DIR = join(import.meta.dirname, "../../../testing/python");

describe("beat and Python Celery, on Redis", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it("a Python Celery worker runs the ticks celery-ts beat sends", async () => {
    const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-py-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const log = join(dir, "record.log");
    await writeFile(log, "");
    const queue = `beat-py-${randomUUID()}`;
    const python: PythonWorker = await startPythonWorker({
      brokerUrl: REDIS_URL,
      queues: [queue],
      env: { INTEROP_LOG: log },
    });
    cleanups.push(() => python.stop());
    const namespace = `py-${randomUUID()}`;
    cleanups.push(() => clearNamespace(REDIS_URL, namespace));
    const beat: Beat = createBeat({
      broker: REDIS_URL,
      namespace,
      entries: [
        {
          name: "record",
          task: "interop.record",
          every: 1,
          args: [21],
          options: { queue, expires: 60, priority: 5 },
        },
      ],
      logger: silentLogger,
    });
    cleanups.push(() => beat.stop());
    await beat.start();
    const lines = async () => (await readFile(log, "utf8")).split("\n").filter(Boolean);
    await waitUntil(async () => (await lines()).length >= 2, {
      timeoutMs: 60_000,
      what: "two ticks run by the Python worker",
    }).catch(() => undefined);
    // On timeout too: the assertion shows what did run.
    expect((await lines()).slice(0, 2)).toEqual(["21 python", "21 python"]);
    expect(python.output()).not.toMatch(/Traceback|ERROR/);
  });

  it("a celery-ts worker runs the ticks Python's celery beat sends", async () => {
    const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-py-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const queue = `beat-py-${randomUUID()}`;
    // A Python app with a one-second schedule, and a private schedule file in the temp folder.
    await writeFile(
      join(dir, "beat_app.py"),
      [
        "from interop_app import app",
        "app.conf.beat_schedule = {",
        `    "ts-tick": {"task": "beat.py_tick", "schedule": 1.0, "args": [7], "kwargs": {"source": "python"}, "options": {"queue": "${queue}"}},`,
        "}",
        "",
      ].join("\n"),
    );
    const calls: { n: number; source: string }[] = [];
    // Python's beat sends args [7] and kwargs {source: "python"}: bound by name, as Python binds them.
    const tick = defineTask(
      "beat.py_tick",
      (n: number, source: string) => {
        calls.push({ n, source });
      },
      { params: ["n", "source"] },
    );
    const worker: Worker = createWorker({
      broker: REDIS_URL,
      tasks: [tick],
      queues: [queue],
      logger: silentLogger,
    });
    cleanups.push(() => worker.stop());
    await worker.start();
    const child = spawnCollecting(
      PYTHON,
      [
        "-m",
        "celery",
        "-A",
        "beat_app",
        "beat",
        "-s",
        join(dir, "celerybeat-schedule"),
        "--pidfile=",
        "-l",
        "INFO",
      ],
      {
        cwd: dir,
        env: {
          ...process.env,
          PYTHONPATH: `${dir}:${PYTHON_APP_DIR}`,
          CELERY_BROKER_URL: REDIS_URL,
        },
      },
    );
    cleanups.push(() => child.stop());
    await waitUntil(() => calls.length >= 2, {
      timeoutMs: 60_000,
      what: "two ticks from Python's celery beat",
    }).catch(() => undefined);
    const output = child.output;
    expect(calls.length, output).toBeGreaterThanOrEqual(2);
    expect(calls[0]).toEqual({ n: 7, source: "python" });
  });
});
