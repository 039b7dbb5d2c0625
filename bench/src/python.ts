// Python Celery (Debian's package, prefork pool) as a peer: a worker process on the same broker
// and backend as celery-ts, running the same no-op task.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Redis } from "ioredis";
import { stopChild, treeCpuUs, treeRss } from "./child.ts";
import { countExisting, SERVERS } from "./servers.ts";

export const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";

export interface PythonRun {
  ms: number;
  cpuUs: number;
  rss: number;
}

/**
 * Starts a prefork worker on `queue` (already filled with the tasks `ids`), times it from its
 * "ready" line to the last result stored, and stops it. Results are Celery's unprefixed
 * `celery-task-meta-<id>` keys (Celery 5.2's backend has no key prefix); the caller deletes them.
 */
export async function pythonProcessing(options: {
  broker: string;
  backend: string;
  prefix: string;
  queue: string;
  ids: readonly string[];
  concurrency?: number;
}): Promise<PythonRun> {
  const args = ["-m", "celery", "-A", "bench_app", "worker", "-P", "prefork", "-Q", options.queue];
  if (options.concurrency) args.push("-c", String(options.concurrency));
  args.push("--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO");
  const child = spawn(PYTHON, args, {
    cwd: join(import.meta.dirname, "..", "python"),
    env: {
      ...process.env,
      BENCH_BROKER: options.broker,
      BENCH_BACKEND: options.backend,
      BENCH_PREFIX: options.prefix,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const redis = new Redis(SERVERS.redisUrl);
  try {
    const pid = child.pid!;
    let log = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Python Celery not ready:\n${log}`)), 60_000);
      child.stderr!.on("data", (chunk: Buffer) => {
        log += chunk.toString();
        if (/ ready\./.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`Python Celery exited (${code}):\n${log}`)));
    });
    const started = performance.now();
    const cpu = treeCpuUs(pid);
    const keys = options.ids.map((id) => `celery-task-meta-${id}`);
    const tail = keys.slice(-50);
    for (;;) {
      // The last few first (cheap); then every one.
      if ((await countExisting(redis, tail)) === tail.length) {
        if ((await countExisting(redis, keys)) === keys.length) break;
      }
      if (performance.now() - started > 600_000) throw new Error("Python Celery: too slow");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ms = performance.now() - started;
    return { ms, cpuUs: treeCpuUs(pid) - cpu, rss: treeRss(pid) };
  } finally {
    redis.disconnect();
    await stopChild(child);
  }
}
