import { randomUUID } from "node:crypto";
import { EVENT_EXCHANGE, clockValue, resolveBroadcast, type Broadcast } from "@celery-ts/core";
import {
  APP_DIR,
  PYTHON,
  environment,
  runPythonCeleryCli,
  runPythonControl,
  spawnCollecting,
  type CollectingChild,
} from "@celery-ts/testing";
import { createClient, type Client } from "@celery-ts/client";
import type { Worker } from "@celery-ts/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTsWorker } from "./support/control-fleet.ts";
import { REDIS_URL } from "./support/redis.ts";

// The run's Redis (docs/testing.md): the tests look only at their own nodes, tasks and events.
const URL = REDIS_URL;
const config = { brokerUrl: URL, resultBackend: URL };
const queue = (label: string): string => `events-${label}-${randomUUID()}`;

let client: Client;
let broadcast: Broadcast;
const workers: Worker[] = [];

beforeAll(async () => {
  client = createClient({ broker: URL, backend: URL });
  broadcast = await resolveBroadcast(URL);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await client?.close();
  await broadcast?.close();
});

/** Python's `celery events --dump`, running until stopped (`stop()`); what it printed so far. */
function celeryEventsDump(): CollectingChild {
  return spawnCollecting(PYTHON, ["-m", "celery", "-A", "interop_app", "events", "--dump"], {
    cwd: APP_DIR,
    env: environment(config),
  });
}

describe("task events in batches (Redis)", () => {
  it("go out as task.multi lists, and Python's celery events --dump shows every one", async () => {
    const q = queue("batch");
    const worker = startTsWorker(URL, [q], { taskEvents: true, concurrency: 20 });
    workers.push(worker);
    await worker.start();
    const routingKeys: string[] = [];
    const raw = await broadcast.subscribe(
      EVENT_EXCHANGE,
      { name: `raw-${randomUUID()}` },
      "task.#",
      ({ routingKey }) => routingKeys.push(routingKey),
    );
    const dump = celeryEventsDump();
    try {
      // The dump prints the worker's heartbeats once it listens.
      await eventually(
        () => dump.output.includes(worker.hostname),
        "celery events --dump to listen",
      );
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          client.sendTask("control.add", { args: [i, 1], queue: q }),
        ),
      );
      await Promise.all(results.map((r) => r.get({ timeout: 20 })));
      // Every task's three events reach the dump, whether they came alone or in a list.
      for (const { id } of results) {
        await eventually(
          () => ["received", "started", "succeeded"].every((s) => lineOf(dump.output, id, s)),
          `the dump to show task ${id} received, started and succeeded`,
        );
      }
      expect(lineOf(dump.output, results[0]!.id, "succeeded")).toContain(worker.hostname);
      // 90 events, sent in fewer messages than that: some were lists.
      expect(routingKeys).toContain("task.multi");
      expect(routingKeys.length).toBeLessThan(90);
    } finally {
      await dump.stop("SIGKILL");
      await raw.close();
    }
  }, 90_000);
});

/** The dump's line for task `id`'s event `state` (`task succeeded: uuid:<id> ...`), if any. */
function lineOf(output: string, id: string, state: string): string | undefined {
  return output.split("\n").find((line) => line.includes(`task ${state}`) && line.includes(id));
}

describe("the Lamport clock and conf (Redis)", () => {
  it("inspect clock answers a real clock, in step with the clock of what the worker hears", async () => {
    const worker = startTsWorker(URL, [queue("clock")]);
    workers.push(worker);
    await worker.start();
    const node = worker.hostname;
    const shown = await runPythonCeleryCli(config, ["inspect", "clock", "-d", node, "-j"]);
    const first = (
      JSON.parse(shown.output.trim().split("\n").pop()!) as Record<string, { clock: number }>
    )[node]!.clock;
    expect(first).toBeGreaterThan(0);
    // A Python client whose clock is far ahead: the worker's clock moves past it on receipt.
    const ahead = Math.max(first, clockValue()) + 100_000;
    const replies = (await runPythonControl(config, {
      op: "broadcast",
      method: "clock",
      destination: [node],
      timeout: 5,
      clock: ahead,
    })) as Record<string, { clock: number }>[];
    expect(replies[0]?.[node]?.clock).toBeGreaterThan(ahead);
  }, 60_000);

  it("inspect conf answers Celery's setting names, with Celery's value shapes", async () => {
    const worker = startTsWorker(URL, [queue("conf")], {
      concurrency: 4,
      prefetch: 8,
      maxTasksPerChild: 100,
    });
    workers.push(worker);
    await worker.start();
    const node = worker.hostname;
    const shown = await runPythonCeleryCli(config, ["inspect", "conf", "-d", node, "-j"]);
    const conf = (
      JSON.parse(shown.output.trim().split("\n").pop()!) as Record<string, Record<string, unknown>>
    )[node]!;
    expect(conf).toMatchObject({
      broker_url: URL,
      result_backend: URL,
      worker_concurrency: 4,
      worker_prefetch_multiplier: 2,
      worker_max_tasks_per_child: 100,
      worker_send_task_events: false,
      accept_content: ["json"],
    });
    // Every key is one of Python Celery's own settings.
    const settings = await pythonSettingNames();
    expect(Object.keys(conf).filter((key) => !settings.has(key))).toEqual([]);
  }, 60_000);
});

/** Every setting name Python Celery knows (celery.app.defaults). */
async function pythonSettingNames(): Promise<Set<string>> {
  const script =
    "import json; from celery.app.defaults import DEFAULTS, flatten; " +
    "print(json.dumps([key for key, _ in flatten(DEFAULTS)]))";
  const python = await spawnCollecting(PYTHON, ["-c", script], { timeoutMs: 60_000 }).exited;
  if (python.code !== 0) throw new Error(`python exited ${python.code}: ${python.output}`);
  const output = python.stdout;
  return new Set(JSON.parse(output) as string[]);
}
