import { execFile, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

/** Debian's Python, which has python3-celery; a pyenv python would not. */
export const PYTHON = "/usr/bin/python3";
const APP_DIR = join(import.meta.dirname, "../python");

export interface PythonCeleryConfig {
  brokerUrl: string;
  resultBackend?: string;
  /** Extra environment, e.g. INTEROP_LOG for the interop.record task. */
  env?: Record<string, string>;
}

function environment(config: PythonCeleryConfig): NodeJS.ProcessEnv {
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
  /** Everything it logged so far. */
  output(): string;
  /** Warm shutdown (SIGTERM); resolves with its exit code. */
  stop(): Promise<number | null>;
}

/** Starts a Python Celery worker and resolves once it says it is ready. */
export async function startPythonWorker(
  config: PythonCeleryConfig & { queues: string[]; concurrency?: number },
): Promise<PythonWorker> {
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
      "threads",
      "-c",
      String(config.concurrency ?? 4),
      "-l",
      "INFO",
      "--without-heartbeat",
      "--without-mingle",
      "--without-gossip",
      "-n",
      `python-interop-${process.pid}-${Date.now()}@%h`,
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
}

/** Runs one Python Celery client call (see python/interop_client.py for the commands). */
export async function runPythonClient(
  config: PythonCeleryConfig,
  command: Record<string, unknown>,
): Promise<PythonCallOutcome> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [join(APP_DIR, "interop_client.py"), JSON.stringify(command)],
    { env: environment(config), timeout: 60_000 },
  );
  return JSON.parse(stdout.trim().split("\n").pop()!) as PythonCallOutcome;
}
