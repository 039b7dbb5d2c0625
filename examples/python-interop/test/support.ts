// What the tests share: the Redis database they use, a Python Celery worker for python/tasks.py,
// the Python scripts, `node src/main.ts`, and polling.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { testServers } from "@celery-ts/testing";

export const exampleDir = join(import.meta.dirname, "..");
const pythonDir = join(exampleDir, "python");

/** Debian's Python, which has python3-celery and python3-redis; a pyenv python would not. */
export const PYTHON = process.env.PYTHON ?? "/usr/bin/python3";

/**
 * The Redis (and database) of this test run: CELERY_TS_REDIS_URL, see docs/testing.md. The example
 * uses the fixed queues "celery" and "python"; no other test of the run uses them.
 */
export const REDIS_URL = testServers().redisUrl;

/** The environment both sides read: broker and result backend on the test's database. */
export const celeryEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  CELERY_BROKER_URL: REDIS_URL,
  CELERY_RESULT_BACKEND: REDIS_URL,
  PYTHONDONTWRITEBYTECODE: "1", // no __pycache__ in python/ from the tests
});

/**
 * Empties this example's queues ("celery" and "python", with kombu's priority lists), which must
 * hold nothing but what the test sends. Only those keys: the database is shared.
 */
export async function emptyExampleQueues(): Promise<void> {
  const sep = "\x06\x16";
  const keys = ["celery", "python"].flatMap((q) => [q, ...[3, 6, 9].map((p) => `${q}${sep}${p}`)]);
  await promisify(execFile)(
    PYTHON,
    [
      "-c",
      "import redis, sys; redis.Redis.from_url(sys.argv[1]).delete(*sys.argv[2:])",
      REDIS_URL,
      ...keys,
    ],
    { timeout: 30_000 },
  );
}

/** Runs a script in python/ with the test's environment; resolves with its output. */
export async function runPythonScript(
  script: string,
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(PYTHON, [script], {
      cwd: pythonDir,
      env: celeryEnv(),
      timeout: 120_000,
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: failed.stdout ?? "", stderr: failed.stderr ?? "", code: failed.code ?? -1 };
  }
}

/** A child process whose output is collected, and that can be stopped with a signal. */
export interface Child {
  readonly process: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  readonly exited: Promise<number | null>;
  /** Sends `signal`, then SIGKILL after `timeoutMs`; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

function collect(child: ChildProcess): Child {
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    process: child,
    output: () => output,
    exited,
    async stop(signal = "SIGTERM", timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(killer);
      }
    },
  };
}

/**
 * The Python worker of the README (`celery -A tasks worker -Q python`), with the thread pool and
 * without the cluster chatter, as the celery-ts interop tests run it. Resolves once it is ready.
 * Python Celery 5.2 with threads can take ~10 s to stop: `stop()` waits, then kills.
 */
export async function startPythonWorker(): Promise<Child> {
  const child = collect(
    spawn(
      PYTHON,
      [
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-Q",
        "python",
        "-P",
        "threads",
        "-c",
        "4",
        "-l",
        "INFO",
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        "-n",
        `python-interop-test-${process.pid}@%h`,
      ],
      {
        cwd: pythonDir,
        env: { ...celeryEnv(), PYTHONUNBUFFERED: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    ),
  );
  try {
    await eventually(
      () => {
        if (/ ready\.\s*$/m.test(child.output())) return true;
        const { exitCode, signalCode } = child.process;
        if (exitCode !== null || signalCode !== null) {
          throw new Error(
            `the Python worker exited (${exitCode ?? signalCode}) before it was ready`,
          );
        }
        return undefined;
      },
      60_000,
      "the Python worker to be ready",
    );
  } catch (error) {
    await child.stop("SIGKILL");
    throw new Error(`${(error as Error).message}:\n${child.output()}`, { cause: error });
  }
  return child;
}

/** `pnpm start`: node src/main.ts on the test's Redis database and any free port. */
export function startMain(): Child {
  return collect(
    spawn(process.execPath, [join(exampleDir, "src/main.ts")], {
      env: { ...celeryEnv(), PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
