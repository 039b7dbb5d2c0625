// Starts `celery-ts worker` as a child process, as an app that runs its worker beside its web
// server does, and stops it gracefully.
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { LogLevel } from "./console-logger.ts";

export interface WorkerProcessOptions {
  /** The module that exports the tasks, as `--app` takes it (relative to `cwd`). */
  app: string;
  broker: string;
  backend?: string;
  /** @default 1 */
  processes?: number;
  /** Tasks at once in each process. @default the CLI's (10) */
  concurrency?: number;
  /** Send task events (`-E`), for `celery-ts events` and the dashboard. @default false */
  events?: boolean;
  /** @default ["celery"] */
  queues?: string[];
  /** Replace a worker process after it started this many tasks (`--max-tasks-per-child`). @default no limit */
  maxTasksPerChild?: number;
  /** Replace a worker process once a task leaves it above this many KiB (`--max-memory-per-child`). @default no limit */
  maxMemoryPerChild?: number;
  /** The worker's working directory. @default this process's */
  cwd?: string;
  /** Extra environment for the tasks (the worker inherits this process's environment too). */
  env?: Record<string, string>;
  /** Append the worker's log to this file. @default this process's stdout and stderr */
  logFile?: string;
  /** @default "info" */
  logLevel?: LogLevel;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Resolves with the exit code (null when killed by a signal) once the worker has exited. */
  readonly exited: Promise<number | null>;
  /**
   * SIGTERM: the worker stops taking tasks, lets running ones finish, and exits. After
   * `timeoutMs`, SIGKILL. Resolves with the exit code.
   */
  stop(timeoutMs?: number): Promise<number | null>;
}

const CLI = fileURLToPath(import.meta.resolve("@celery-ts/worker/cli"));

/** Runs the `celery-ts worker` CLI in a child process; it never outlives this process. */
export function startWorkerProcess(options: WorkerProcessOptions): WorkerProcess {
  const args = [
    CLI,
    "worker",
    "--app",
    options.app,
    "--broker",
    options.broker,
    ...(options.backend !== undefined ? ["--backend", options.backend] : []),
    "--processes",
    String(options.processes ?? 1),
    ...(options.concurrency !== undefined ? ["--concurrency", String(options.concurrency)] : []),
    ...(options.queues !== undefined ? ["--queues", options.queues.join(",")] : []),
    ...(options.events ? ["--events"] : []),
    ...(options.maxTasksPerChild !== undefined
      ? ["--max-tasks-per-child", String(options.maxTasksPerChild)]
      : []),
    ...(options.maxMemoryPerChild !== undefined
      ? ["--max-memory-per-child", String(options.maxMemoryPerChild)]
      : []),
    ...(options.logLevel !== undefined ? ["--log-level", options.logLevel] : []),
  ];
  const log = options.logFile === undefined ? "inherit" : openSync(options.logFile, "a");
  const child = spawn(process.execPath, args, {
    ...(options.cwd !== undefined && { cwd: options.cwd }),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", log, log],
    // Its own process group: Ctrl-C in a terminal reaches only this process, which then stops
    // the worker with one SIGTERM (a second signal would make the worker exit without waiting).
    detached: true,
  });
  if (typeof log === "number") closeSync(log);
  if (child.pid === undefined)
    throw new Error("[celery-ts:worker] could not start the worker process");

  let running = true;
  // Never leave a worker behind, even when this process exits without stopping it.
  const killOnExit = (): void => {
    if (running) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      running = false;
      process.off("exit", killOnExit);
      resolve(code);
    });
  });

  return {
    pid: child.pid,
    exited,
    async stop(timeoutMs = 35_000) {
      if (!running) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
