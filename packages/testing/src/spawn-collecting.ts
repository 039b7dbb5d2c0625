import { spawn, type ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** How a child process ended. */
export interface SpawnExit {
  /** The exit code; `null` when a signal ended it (or it never started). */
  code: number | null;
  /** The signal that ended it, if one did. */
  signal: NodeJS.Signals | null;
  /** Why it could not be started (a missing command, for instance); the other fields are empty. */
  error?: Error;
  /** Standard output and standard error, interleaved in the order they arrived. */
  output: string;
  stdout: string;
  stderr: string;
}

export interface SpawnCollectingOptions {
  cwd?: string;
  /**
   * The child's environment; `process.env` when left out. A node child (`command` is
   * `process.execPath`) also gets `NODE_COMPILE_CACHE` (see `withCompileCache()`).
   */
  env?: NodeJS.ProcessEnv;
  /**
   * Kills the child with SIGKILL if it is still running after this many ms (an `exited` with
   * `signal: "SIGKILL"` tells the test it hung). Default: no limit.
   */
  timeoutMs?: number;
  /** Also writes each chunk to this process's stdout/stderr, to watch a child in a debug run. */
  echo?: boolean;
}

/** A child process whose output is collected; see `spawnCollecting()`. */
export interface CollectingChild {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** Standard output and standard error so far, interleaved in the order they arrived. */
  readonly output: string;
  readonly stdout: string;
  readonly stderr: string;
  /** Settles once the child has exited and its output is read; never rejects. */
  readonly exited: Promise<SpawnExit>;
  /** Whether the child has exited (or never started). */
  readonly running: boolean;
  /**
   * Waits (bounded by `timeoutMs`) until the output matches `pattern`; returns the match.
   * Throws, with the output so far, when the time is up or the child exits first.
   */
  waitForOutput(pattern: RegExp | string, timeoutMs: number): Promise<RegExpExecArray>;
  /**
   * Stops the child: `signal` (default SIGTERM), then SIGKILL if it is still running after
   * `graceMs` (default 10 s); resolves with how it ended. Safe to call more than once, and on a
   * child that has already exited.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<SpawnExit>;
}

/**
 * Node's compile cache for node children, shared by every test run on the machine (Node keys it
 * by file content and its own version): a child loading the CLI's TypeScript sources then starts
 * with about a third of the CPU, which a loaded machine turns into seconds.
 */
export const NODE_COMPILE_CACHE_DIR = join(tmpdir(), "celery-ts-node-compile-cache");

/** `env` with `NODE_COMPILE_CACHE` set, unless it sets one (or `""` to turn it off). */
export function withCompileCache(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env.NODE_COMPILE_CACHE === undefined
    ? { ...env, NODE_COMPILE_CACHE: NODE_COMPILE_CACHE_DIR }
    : env;
}

/** Children still running, killed when the test process exits so that none outlives its run. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

/**
 * Spawns `command` with `args` (no shell), collecting its standard output and error: the test's
 * one way to run a child process and look at what it printed and how it ended. The child is
 * killed with SIGKILL after `timeoutMs`, and when the test process exits while it still runs;
 * `stop()` ends it with a signal and a grace period.
 */
export function spawnCollecting(
  command: string,
  args: readonly string[],
  options: SpawnCollectingOptions = {},
): CollectingChild {
  installExitHook();
  const env = options.env ?? process.env;
  const child = spawn(command, args, {
    ...(options.cwd !== undefined && { cwd: options.cwd }),
    env: command === process.execPath ? withCompileCache(env) : env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const text = { output: "", stdout: "", stderr: "" };
  const collect = (stream: "stdout" | "stderr") => (part: string) => {
    text[stream] += part;
    text.output += part;
    if (options.echo) process[stream].write(part);
  };
  // Decoded as UTF-8 across chunk boundaries.
  child.stdout!.setEncoding("utf8").on("data", collect("stdout"));
  child.stderr!.setEncoding("utf8").on("data", collect("stderr"));
  live.add(child);
  const state = { running: true };
  const exited = watchExit(child, text, state, options.timeoutMs);
  return {
    child,
    pid: child.pid,
    get output() {
      return text.output;
    },
    get stdout() {
      return text.stdout;
    },
    get stderr() {
      return text.stderr;
    },
    exited,
    get running() {
      return state.running;
    },
    waitForOutput: (pattern, timeoutMs) => waitForOutput(command, text, state, pattern, timeoutMs),
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (state.running && child.exitCode === null && child.signalCode === null) {
        // A stopped (SIGSTOP) child handles no signal until it is continued.
        child.kill("SIGCONT");
        child.kill(signal);
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Settles when the child has exited and its output is read; kills it after `timeoutMs`. */
function watchExit(
  child: ChildProcess,
  text: { output: string; stdout: string; stderr: string },
  state: { running: boolean },
  timeoutMs: number | undefined,
): Promise<SpawnExit> {
  return new Promise<SpawnExit>((resolve) => {
    let settled = false;
    const finish = (extra: Partial<SpawnExit> = {}): void => {
      if (settled) return;
      settled = true;
      state.running = false;
      live.delete(child);
      clearTimeout(timer);
      resolve({ code: child.exitCode, signal: child.signalCode, ...text, ...extra });
    };
    const timer =
      timeoutMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      // Not started (ENOENT, EACCES): no exit follows.
      if (child.pid === undefined) finish({ code: null, signal: null, error });
    });
    // "close" once the pipes are drained; a grandchild holding them open must not keep the
    // test waiting, so "exit" finishes too, a moment later.
    child.once("close", () => finish());
    child.once("exit", () => setTimeout(finish, 2_000).unref());
  });
}

async function waitForOutput(
  command: string,
  text: { output: string },
  state: { running: boolean },
  pattern: RegExp | string,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  const regex = typeof pattern === "string" ? new RegExp(escapeRegExp(pattern)) : pattern;
  const what = `${command} to print ${String(regex)}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = regex.exec(text.output);
    if (match) return match;
    if (!state.running)
      throw new Error(`${what}, but it exited first; it printed:\n${text.output}`);
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; it printed:\n${text.output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
