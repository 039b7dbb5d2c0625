// Runs a worker in a process of its own (worker-child.ts, or Python Celery) and reads its figures.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ChildConfig } from "./worker-child.ts";

export interface Checkpoint {
  tasks: number;
  ms: number;
  /** CPU used by the worker since it started, µs. */
  cpuUs: number;
  rss: number;
  /** V8's heap in use (bytes), where the worker reports it (celery-ts and BullMQ do). */
  heapUsed?: number;
}

export interface ChildWorker {
  pid: number;
  /** Resolves with the RSS once the worker is started. */
  ready: Promise<number>;
  /** The next checkpoint the child reports. */
  next(timeoutMs?: number): Promise<Checkpoint>;
  stop(): Promise<void>;
}

/** celery-ts or BullMQ, in a Node process of its own. */
export function nodeWorker(config: ChildConfig): ChildWorker {
  const child = spawn(process.execPath, [join(import.meta.dirname, "worker-child.ts")], {
    env: { ...process.env, BENCH_CHILD: JSON.stringify(config) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return lineReader(child, config.system, (text) => Number(text.split(" ")[1]));
}

/** Reads a worker's report lines (stdout): `ready ...` first, then checkpoints. */
function lineReader(
  child: ChildProcess,
  what: string,
  readyRss: (line: string) => number,
): ChildWorker {
  const lines = createInterface({ input: child.stdout! });
  const pending: { resolve(line: string): void; reject(error: Error): void }[] = [];
  const queued: string[] = [];
  let exited: Error | undefined;
  lines.on("line", (text) => {
    const taker = pending.shift();
    if (taker) taker.resolve(text);
    else queued.push(text);
  });
  child.once("exit", (code) => {
    exited = new Error(`${what} worker exited (${code})`);
    for (const taker of pending.splice(0)) taker.reject(exited);
  });
  const line = (timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const early = queued.shift();
      if (early !== undefined) return resolve(early);
      if (exited) return reject(exited);
      const timer = setTimeout(() => reject(new Error(`${what} worker: no report`)), timeoutMs);
      pending.push({
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject,
      });
    });
  const ready = line(60_000).then(readyRss);
  return {
    pid: child.pid!,
    ready,
    async next(timeoutMs = 600_000) {
      const [, tasks, ms, cpuUs, rss, heapUsed] = (await line(timeoutMs)).split(" ").map(Number);
      return {
        tasks: tasks!,
        ms: ms!,
        cpuUs: cpuUs!,
        rss: rss!,
        ...(heapUsed !== undefined && { heapUsed }),
      };
    },
    stop: () => stopChild(child),
  };
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

const TICKS = 100; // USER_HZ on Linux

/**
 * Sums `value` over `pid` and its live children (a prefork pool), reading /proc/<pid>/stat:
 * the fields after the command name, where [1] is the parent's pid.
 */
function sumOverTree(pid: number, value: (fields: string[], entry: string) => number): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(entry) !== pid && Number(fields[1]) !== pid) continue;
      total += value(fields, entry);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** CPU (µs) used so far by `pid` and its live children: utime + stime, in clock ticks. */
export const treeCpuUs = (pid: number): number =>
  (sumOverTree(pid, (fields) => Number(fields[11]) + Number(fields[12])) / TICKS) * 1e6;

/** RSS (bytes) of `pid` and its live children, from /proc/<pid>/status. */
export const treeRss = (pid: number): number =>
  sumOverTree(pid, (_fields, entry) => {
    const status = readFileSync(`/proc/${entry}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  });
