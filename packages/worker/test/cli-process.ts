import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

const CLI = join(import.meta.dirname, "../src/cli.ts");
export const TASKS = join(import.meta.dirname, "fixtures/cli-tasks.ts");

/** A `celery-ts` process under test, with its JSON log lines collected. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  stderr = "";
  stdout = "";
  readonly exited: Promise<number | null>;

  /** `detached`: in a process group of its own (its pid is the group's id), as a service is. */
  constructor(args: string[], env: Record<string, string> = {}, { detached = false } = {}) {
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
