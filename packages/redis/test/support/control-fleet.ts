// Shared by the Redis and RabbitMQ remote-control tests: tasks, a TS worker, bounded waits.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { currentTask, defineTask, type CeleryEvent, type Logger } from "@celery-ts/core";
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
export function runTsCli(
  args: string[],
  cwd = join(import.meta.dirname, "../.."),
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
