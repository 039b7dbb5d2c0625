// Starts `celery-ts worker` as a child process, as you would run it in production (there, under
// systemd, Docker or Kubernetes, and often on other machines), and stops it gracefully.
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";

export interface WorkerProcessOptions {
  /** The tasks module, relative to the example's directory. @default "src/tasks.ts" */
  app?: string;
  broker: string;
  backend: string;
  /** @default 1 */
  processes?: number;
  /** Tasks at once in each process. @default the worker's (10) */
  concurrency?: number;
  /** Extra environment for the tasks (the worker inherits this process's environment too). */
  env?: Record<string, string>;
  /** Append the worker's log to this file; by default it shares this process's stdout/stderr. */
  logFile?: string;
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

const exampleDir = join(import.meta.dirname, "..");

export function startWorkerProcess(options: WorkerProcessOptions): WorkerProcess {
  const args = [
    "worker",
    "--app",
    options.app ?? "src/tasks.ts",
    "--broker",
    options.broker,
    "--backend",
    options.backend,
    "--processes",
    String(options.processes ?? 1),
    ...(options.concurrency !== undefined ? ["--concurrency", String(options.concurrency)] : []),
  ];
  const log = options.logFile === undefined ? "inherit" : openSync(options.logFile, "a");
  const child = spawn(join(exampleDir, "node_modules/.bin/celery-ts"), args, {
    cwd: exampleDir,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", log, log],
    // Its own process group: Ctrl-C in a terminal reaches only main.ts, which then stops the
    // worker with one SIGTERM (a second signal would make the worker exit without waiting).
    detached: true,
  });
  if (typeof log === "number") closeSync(log);
  if (child.pid === undefined) throw new Error("could not start the celery-ts worker");

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
