import { execFile, spawn, type ChildProcess } from "node:child_process";
import { hostname } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { decodeJson, encodeJson } from "@celery-ts/core";

/**
 * The Python with Celery 5, redis and amqp: `PYTHON`, else Debian's (which has python3-celery; a
 * pyenv python would not). See docs/testing.md.
 */
export const PYTHON = process.env.PYTHON?.trim() || "/usr/bin/python3";
export const APP_DIR = join(import.meta.dirname, "../python");

export interface PythonCeleryConfig {
  brokerUrl: string;
  resultBackend?: string;
  /** Extra environment, e.g. INTEROP_LOG for the interop.record task. */
  env?: Record<string, string>;
}

/** The environment the Python app reads its configuration from. */
export function environment(config: PythonCeleryConfig): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PYTHONPATH: APP_DIR,
    CELERY_BROKER_URL: config.brokerUrl,
    CELERY_RESULT_BACKEND: config.resultBackend ?? "",
    ...config.env,
  };
}

/** A Python Celery worker (`celery -A interop_app worker`) running the tasks in python/interop_app.py. */
export interface PythonWorker {
  readonly process: ChildProcess;
  /** Its node name, e.g. `python-interop-123-456@myhost`, for `destination` and events. */
  readonly nodeName: string;
  /** Everything it logged so far. */
  output(): string;
  /** Warm shutdown (SIGTERM); resolves with its exit code. */
  stop(): Promise<number | null>;
}

/** Starts a Python Celery worker and resolves once it says it is ready. */
export async function startPythonWorker(
  config: PythonCeleryConfig & {
    queues: string[];
    concurrency?: number;
    /**
     * Send task events (`-E`) and heartbeats, and sync revokes at start (mingle); runs the solo
     * pool rather than threads (one task at a time; `concurrency` does not apply). @default false
     */
    events?: boolean;
  },
): Promise<PythonWorker> {
  const nodeName = `python-interop-${process.pid}-${Date.now()}@${hostname()}`;
  const quiet = config.events
    ? ["-E", "--without-gossip"]
    : ["--without-heartbeat", "--without-mingle", "--without-gossip"];
  // With events, the solo pool: Celery's threads pool loses task events. Its worker buffers them
  // (EventDispatcher's group buffer) and flushes from the event loop, publishing the list and then
  // emptying it, while the pool's threads append task-started and task-succeeded unlocked: what
  // they append during the publish is dropped (about half of 200 quick tasks lost one). Solo and
  // prefork send every task event from the main thread (none of 200 lost); solo starts fastest
  // (prefork's four children took over 30 s to start on a loaded machine). It runs one task at a
  // time, in its event loop: fine for the quick tasks these fleets run.
  const pool = config.events ? "solo" : "threads";
  const child = spawn(
    PYTHON,
    [
      "-m",
      "celery",
      "-A",
      "interop_app",
      "worker",
      "-Q",
      config.queues.join(","),
      "-P",
      pool,
      "-c",
      String(config.concurrency ?? 4),
      "-l",
      "INFO",
      ...quiet,
      "-n",
      nodeName,
    ],
    { cwd: APP_DIR, env: environment(config), stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the Python worker did not start:\n${output}`)),
      30_000,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/ ready\.\s*$/m.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the Python worker exited (${code}) before it was ready:\n${output}`));
    });
  });
  return {
    process: child,
    nodeName,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
  };
}

/** The outcome of a Python client call, as python/interop_client.py prints it. */
export interface PythonCallOutcome {
  id: string;
  status?: string;
  result?: unknown;
  exc_type?: string;
  exc_message?: string;
  /** The Python module of the exception `get()` raised, e.g. `billiard.exceptions`. */
  exc_module?: string;
  exc_args?: unknown[];
  /** The `celery.exceptions` classes (of a fixed list) the exception is an instance of. */
  caught_as?: string[];
}

/** Runs one Python Celery client call (see python/interop_client.py for the commands). */
export async function runPythonClient(
  config: PythonCeleryConfig,
  command: Record<string, unknown>,
): Promise<PythonCallOutcome> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [join(APP_DIR, "interop_client.py"), encodeJson(command)],
    { env: environment(config), timeout: 60_000 },
  );
  // decodeJson: Python prints integers beyond 2^53 exactly, and so they are read.
  return decodeJson(stdout.trim().split("\n").pop()!) as PythonCallOutcome;
}

/** Runs one remote control or events call from Python (see python/control_client.py). */
export async function runPythonControl(
  config: PythonCeleryConfig,
  command: Record<string, unknown>,
): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [join(APP_DIR, "control_client.py"), JSON.stringify(command)],
    { env: environment(config), timeout: 60_000 },
  );
  return JSON.parse(stdout.trim().split("\n").pop()!) as unknown;
}

/** Runs Python's `celery -A interop_app <args>` and resolves with its output and exit code. */
export async function runPythonCeleryCli(
  config: PythonCeleryConfig,
  args: string[],
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      PYTHON,
      ["-m", "celery", "-A", "interop_app", ...args],
      { cwd: APP_DIR, env: environment(config), timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}
