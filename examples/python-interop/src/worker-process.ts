// Starts `celery-ts worker --app src/tasks.ts` as a child process, as you would run it in
// production (there, under systemd, Docker or Kubernetes), and stops it gracefully.
import { spawn } from "node:child_process";
import { join } from "node:path";

export interface WorkerProcessOptions {
  broker: string;
  backend: string;
  /** @default 1 */
  processes?: number;
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
    "src/tasks.ts",
    "--broker",
    options.broker,
    "--backend",
    options.backend,
    "--processes",
    String(options.processes ?? 1),
  ];
  const child = spawn(join(exampleDir, "node_modules/.bin/celery-ts"), args, {
    cwd: exampleDir,
    // Its log goes to this process's stdout and stderr.
    stdio: ["ignore", "inherit", "inherit"],
    // Its own process group: Ctrl-C in a terminal reaches only main.ts, which then stops the
    // worker with one SIGTERM (a second signal would make the worker exit without waiting).
    detached: true,
  });
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
