import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

const CLI = join(import.meta.dirname, "../src/cli.ts");
export const TASKS = join(import.meta.dirname, "fixtures/cli-tasks.ts");

/** A `celery-ts` process under test, with its JSON log lines collected. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      for (const line of chunk.split("\n")) {
        if (line.startsWith("{")) this.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }

  /** Waits for a log line whose message matches, after `from` lines. */
  async waitForLog(msg: string, from = 0, timeoutMs = 20_000): Promise<Record<string, unknown>> {
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
  async waitForCount(msg: string, count: number, timeoutMs = 20_000): Promise<void> {
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
): CliProcess {
  return new CliProcess(
    ["worker", "--app", TASKS, "--broker", url, "--backend", url, "--log-format", "json", ...args],
    env,
  );
}
