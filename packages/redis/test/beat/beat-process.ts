import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const CLI = fileURLToPath(import.meta.resolve("@celery-ts/worker/cli"));

export interface LogLine {
  msg: string;
  pid: number;
  /** When this test process read the line (epoch ms). */
  readAt: number;
  [field: string]: unknown;
}

/** A `celery-ts beat` (or `celery-ts worker --beat`) child process, its JSON log lines collected. */
export class BeatProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  text = "";
  readonly exited: Promise<number | null>;

  /** `env`: added to this process's environment. */
  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [CLI, ...args, "--log-format", "json"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        this.text += `${line}\n`;
        if (!line.startsWith("{")) return;
        try {
          this.lines.push({ ...(JSON.parse(line) as LogLine), readAt: Date.now() });
        } catch {
          // not a log line
        }
      });
    }
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  count(msg: string, from = 0): number {
    return this.lines.slice(from).filter((line) => line.msg === msg).length;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGCONT");
      this.child.kill("SIGTERM");
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Waits (bounded) until `check` returns a value. */
export async function waitFor<T>(
  check: () => T | undefined | false,
  withinMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${withinMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Deletes a beat namespace's keys from a shared store (the servers are shared: no flushes). */
export async function clearNamespace(storeUrl: string, namespace: string): Promise<void> {
  const { resolveStore } = await import("@celery-ts/core");
  const store = await resolveStore(storeUrl);
  try {
    for (const { key, value } of await store.list(`beat:${namespace}:`)) {
      await store.deleteIfEquals(key, value);
    }
  } finally {
    await store.close();
  }
}
