// Shared by the Redis and RabbitMQ remote-control tests: tasks, a TS worker, bounded waits.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  currentTask,
  defineTask,
  receiveEvents,
  resolveBroadcast,
  type CeleryEvent,
  type Logger,
} from "@celery-ts/core";
import type { Client } from "@celery-ts/client";
import { runPythonControl, spawnCollecting, type PythonCeleryConfig } from "@celery-ts/testing";
import { expect } from "vitest";
import { createWorker, type Worker, type WorkerOptions } from "@celery-ts/worker";

/** What the control tasks saw: ids of runs whose abort signal fired, ids that ran. */
export const seen = { aborted: new Set<string>(), ran: new Set<string>() };

export const controlTasks = [
  defineTask("control.add", (a: number, b: number) => {
    seen.ran.add(currentTask().id);
    return a + b;
  }),
  defineTask("control.sleep", async (ms: number) => {
    const { id, signal } = currentTask();
    seen.ran.add(id);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        seen.aborted.add(id);
        clearTimeout(timer);
        resolve();
      });
    });
    return "slept";
  }),
];

/** A node name unique to this test run. */
export function nodeName(label: string): string {
  return `ts-${label}-${randomUUID().slice(0, 8)}@${hostname()}`;
}

export function startTsWorker(
  url: string,
  queues: string[],
  options: Partial<WorkerOptions> & { logger?: Logger } = {},
): Worker {
  return createWorker({
    broker: url,
    backend: url,
    tasks: controlTasks,
    queues,
    hostname: nodeName("worker"),
    shutdownTimeout: 5,
    ...options,
  });
}

/** Polls `check` until it returns a value other than undefined/false, for at most `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits for `events` (what a receiver collects) to hold the task-succeeded of task `id` from
 * `host`, then gives the types of all that task's events there. A Python worker sends them batched
 * as task.multi; it loses none with its solo pool (see startPythonWorker).
 */
export async function taskEventTypes(
  events: readonly CeleryEvent[],
  host: string,
  id: string,
): Promise<Set<string>> {
  const types = () =>
    new Set(events.filter((e) => e.hostname === host && e.uuid === id).map((e) => e.type));
  await eventually(() => types().has("task-succeeded"), `${host}'s task-succeeded for ${id}`);
  return types();
}

const CLI = join(import.meta.dirname, "../../../worker/src/cli.ts");

/** Runs `celery-ts <args>` in `cwd`, a package folder from which the broker's driver resolves. */
export async function runTsCli(
  args: string[],
  cwd = join(import.meta.dirname, "../.."),
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await spawnCollecting(process.execPath, [CLI, ...args], { cwd })
    .exited;
  return { code, stdout, stderr };
}

/** What a TS worker sends for one task it runs, with its heartbeat. */
const TS_WORKER_EVENTS = ["worker-heartbeat", "task-received", "task-started", "task-succeeded"];

/**
 * A mixed fleet's events, both ways, on any broker: Python's event receiver (node `receiver`)
 * hears the TS worker's heartbeat and task events and the Python worker's heartbeat, and ours
 * hears the Python worker's task events. `listening` tells when Python's receiver has its queue
 * (a binding on Redis, a declared queue on RabbitMQ). Returns what each side heard.
 */
export async function mixedFleetEvents(fleet: {
  config: PythonCeleryConfig;
  client: Client;
  ts: { hostname: string; queue: string };
  python: { nodeName: string; queue: string };
  receiver: string;
  listening(): Promise<boolean>;
}): Promise<{ theirs: CeleryEvent[]; ours: CeleryEvent[]; tsTaskId: string }> {
  const { client, ts, python } = fleet;
  const ours: CeleryEvent[] = [];
  const broadcast = await resolveBroadcast(fleet.config.brokerUrl);
  const subscription = await receiveEvents(broadcast, (event) => ours.push(event));
  try {
    const capture = runPythonControl(fleet.config, {
      op: "events",
      // Until it has heard each of these, within a generous bound.
      seconds: 40,
      hostnames: [ts.hostname, python.nodeName],
      node_id: fleet.receiver,
      until: [
        ...TS_WORKER_EVENTS.map((type) => [ts.hostname, type]),
        [python.nodeName, "worker-heartbeat"],
      ],
    }) as Promise<CeleryEvent[]>;
    // Tasks on both sides once Python's receiver listens.
    await eventually(fleet.listening, "Python's event receiver to listen");
    const tsTask = await client.sendTask("control.add", { args: [1, 2], queue: ts.queue });
    const pyTask = await client.sendTask("interop.add", { args: [3, 4], queue: python.queue });
    await Promise.all([tsTask.get({ timeout: 20 }), pyTask.get({ timeout: 20 })]);
    const theirs = await capture;
    const types = (host: string) =>
      new Set(theirs.filter((e) => e.hostname === host).map((e) => e.type));
    expect(types(ts.hostname)).toEqual(new Set(TS_WORKER_EVENTS));
    expect(types(python.nodeName)).toContain("worker-heartbeat");
    expect(await taskEventTypes(ours, python.nodeName, pyTask.id)).toEqual(
      new Set(["task-received", "task-started", "task-succeeded"]),
    );
    return { theirs, ours, tsTaskId: tsTask.id };
  } finally {
    await subscription.close();
    await broadcast.close();
  }
}
