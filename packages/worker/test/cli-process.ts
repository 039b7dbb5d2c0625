import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { afterEach, beforeEach } from "vitest";

const CLI = join(import.meta.dirname, "../src/cli.ts");
export const TASKS = join(import.meta.dirname, "fixtures/cli-tasks.ts");

/** A `celery-ts` process under test, with its JSON log lines collected. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  stderr = "";
  stdout = "";
  readonly exited: Promise<number | null>;
  /** In a process group of its own. */
  readonly detached: boolean;

  /** `detached`: in a process group of its own (its pid is the group's id), as a service is. */
  constructor(args: string[], env: Record<string, string> = {}, { detached = false } = {}) {
    this.detached = detached;
    this.child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached,
    });
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    let partial = "";
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      // A chunk may end mid-line: keep the tail until its newline arrives.
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (line.startsWith("{")) this.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }

  /** Waits for a log line whose message matches, after `from` lines. */
  async waitForLog(msg: string, from = 0, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.slice(from).find((l) => l.msg === msg);
      if (line) return line;
      if (Date.now() > deadline)
        throw new Error(`no "${msg}" log line within ${timeoutMs} ms:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Waits until `count` log lines with this message have been written. */
  async waitForCount(msg: string, count: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.count(msg) < count) {
      if (Date.now() > deadline)
        throw new Error(`fewer than ${count} "${msg}" lines:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }
}

/** `celery-ts worker` on a broker and backend URL, logging JSON. */
export function startWorker(
  url: string,
  args: string[],
  env: Record<string, string> = {},
  options: { detached?: boolean } = {},
): CliProcess {
  return new CliProcess(
    ["worker", "--app", TASKS, "--broker", url, "--backend", url, "--log-format", "json", ...args],
    env,
    options,
  );
}

/** What `useCliRun()` gives each test: a SQLite broker for CLI workers, and a log for tasks. */
export interface CliRun {
  /** The test's own temporary folder (removed after it). */
  readonly dir: string;
  /** The SQLite file in `dir`, as a broker and backend URL. */
  readonly url: string;
  /** An empty file the tasks append a line to per run (`CELERY_TS_TEST_LOG`). */
  readonly log: string;
  /** A client on `url`, closed after the test. */
  readonly client: Client;
  /** Starts `celery-ts worker` on `url` (see `startWorker`), stopped after the test. */
  worker(
    args: string[],
    env?: Record<string, string>,
    options?: { detached?: boolean },
  ): CliProcess;
  /** The lines the tasks appended to `log`, each split at spaces into numbers. */
  logLines(): number[][];
}

/**
 * A describe block's CLI worker runs: before each test a fresh folder, SQLite broker, task log and
 * client; after it, the client closed and every worker started by `worker()` stopped (SIGTERM, or
 * with `kill`, SIGKILL to its process group, for a worker left running long tasks) and waited
 * for, then the folder removed.
 */
export function useCliRun(prefix: string, { kill = false } = {}): CliRun {
  let dir = "";
  let client: Client | undefined;
  const workers: CliProcess[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), `celery-ts-${prefix}-`));
    writeFileSync(join(dir, "runs.log"), "");
    client = createClient({ broker: run.url, backend: run.url });
  });
  // Waits for the workers to exit: a process still starting (a replacement of a retired one)
  // stops once it is up, which took 3 to 10 s on a loaded machine; the default 10 s hook bound
  // failed, and the hook, still running, then removed the next test's folder.
  afterEach(async () => {
    const own = dir;
    await client?.close();
    await Promise.all(
      workers.splice(0).map((worker) => {
        if (!kill) return worker.stop();
        if (worker.child.exitCode === null && worker.child.signalCode === null) {
          process.kill(worker.detached ? -worker.child.pid! : worker.child.pid!, "SIGKILL");
        }
        return worker.exited;
      }),
    );
    rmSync(own, { recursive: true, force: true });
  }, 60_000);
  const run: CliRun = {
    get dir() {
      return dir;
    },
    get url() {
      return `sqlite:///${join(dir, "queue.db")}`;
    },
    get log() {
      return join(dir, "runs.log");
    },
    get client() {
      if (!client) throw new Error("useCliRun(): the client exists inside a test only");
      return client;
    },
    worker(args, env = {}, options = {}) {
      const worker = startWorker(run.url, args, env, options);
      workers.push(worker);
      return worker;
    },
    logLines: () =>
      readFileSync(run.log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => line.split(" ").map(Number)),
  };
  return run;
}
