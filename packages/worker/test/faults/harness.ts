import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type AsyncResult, type Client } from "@celery-ts/client";
import { isCeleryTsError } from "@celery-ts/core";
import { sleep } from "@celery-ts/core/driver";
import { CliProcess } from "../cli-process.ts";
import { slow, work } from "./tasks.ts";

/** The fault tests' tasks; a driver that registers its URL scheme on import wraps it. */
export const FAULT_TASKS = join(import.meta.dirname, "tasks.ts");

/** What a fault test prints and checks. */
export interface FaultFigures {
  scenario: string;
  broker: string;
  /** Tasks sent. */
  load: number;
  /** Faults injected (processes killed, servers killed, connections closed). */
  faults: number;
  /** Tasks without a SUCCESS result at the end: must be 0. */
  lost: number;
  /** Tasks that completed more than once (at-least-once after a crash). */
  runTwice: number;
  /** Seconds from the (last) fault until the work went on (the next completion after it). */
  recoverySeconds: number;
  [extra: string]: unknown;
}

export { sleep };

/** Waits (bounded) until `check()` is true. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * One fault test: `celery-ts worker` processes on a broker, a batch of tasks that record every
 * run in a file, and the figures: lost (no SUCCESS result), run twice, recovery time.
 */
export class FaultBench {
  readonly queue = `faults-${randomUUID()}`;
  readonly dir = mkdtempSync(join(tmpdir(), "celery-ts-faults-"));
  readonly runLog = join(this.dir, "runs.log");
  readonly client: Client;
  readonly workers: CliProcess[] = [];
  readonly results: AsyncResult<number>[] = [];
  faults = 0;
  /** When the last fault was injected (epoch ms). */
  faultAt = 0;

  readonly scenario: string;
  readonly broker: string;
  readonly backend: string;

  readonly tasks: string;

  constructor(scenario: string, broker: string, backend: string, tasks = FAULT_TASKS) {
    this.tasks = tasks;
    this.scenario = scenario;
    this.broker = broker;
    this.backend = backend;
    writeFileSync(this.runLog, "");
    this.client = createClient({ broker, backend });
  }

  /** A `celery-ts worker` on this bench's queue, logging JSON. */
  startWorker(args: string[] = []): CliProcess {
    const worker = new CliProcess(
      [
        "worker",
        "--app",
        this.tasks,
        "--broker",
        this.broker,
        "--backend",
        this.backend,
        "--queues",
        this.queue,
        "--log-format",
        "json",
        "--without-heartbeat",
        ...args,
      ],
      { CELERY_TS_FAULT_LOG: this.runLog },
    );
    this.workers.push(worker);
    return worker;
  }

  /** Sends `count` tasks (numbered from the ones sent before). */
  async publish(count: number): Promise<void> {
    const handle = this.client.task(work);
    const start = this.results.length;
    for (let i = start; i < start + count; i++) {
      this.results.push(await handle.applyAsync([i], { queue: this.queue }));
    }
  }

  /**
   * Sends one more task while the broker may be down: "sent" (it then counts in the load and
   * must run), or "CONNECTION error" (a clear, retryable error); anything else is a bug.
   */
  async tryPublish(): Promise<string> {
    return this.publish(1).then(
      () => "sent",
      (error: unknown) =>
        isCeleryTsError(error, "CONNECTION") && error.retryable
          ? "CONNECTION error"
          : String(error),
    );
  }

  /** Sends one slow task (`ms` long); it counts in the load as any other. */
  async publishSlow(ms: number): Promise<void> {
    const i = this.results.length;
    this.results.push(await this.client.task(slow).applyAsync([i, ms], { queue: this.queue }));
  }

  /** Completed runs, one "<i> <pid>" line each. */
  runs(): Map<number, number[]> {
    const runs = new Map<number, number[]>();
    for (const line of readFileSync(this.runLog, "utf8").split("\n")) {
      if (line === "") continue;
      const [i, pid] = line.split(" ").map(Number) as [number, number];
      runs.set(i, [...(runs.get(i) ?? []), pid]);
    }
    return runs;
  }

  completed(): number {
    return readFileSync(this.runLog, "utf8").split("\n").length - 1;
  }

  /** Counts a fault now (the recovery time runs from the last one). */
  fault(): void {
    this.faults++;
    this.faultAt = Date.now();
  }

  /** Resolves once a run completes after now: seconds since `from` (the last fault). */
  async recovered(from = this.faultAt, timeoutMs = 60_000): Promise<number> {
    const before = this.completed();
    await until(
      () => this.completed() > before,
      timeoutMs,
      "a task to complete after the fault",
    ).catch((error: unknown) => {
      this.explain([]);
      throw error;
    });
    return (Date.now() - from) / 1000;
  }

  /** Waits for every result (bounded), then counts. */
  async figures(
    recoverySeconds: number,
    timeoutSeconds = 60,
    extra: Record<string, unknown> = {},
  ): Promise<FaultFigures> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    let statuses: string[];
    for (;;) {
      statuses = await Promise.all(this.results.map((r) => r.status().catch(() => "UNKNOWN")));
      if (statuses.every((s) => s === "SUCCESS") || Date.now() > deadline) break;
      await sleep(250);
    }
    const figures: FaultFigures = {
      scenario: this.scenario,
      broker: this.broker.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:**@"),
      load: this.results.length,
      faults: this.faults,
      lost: statuses.filter((s) => s !== "SUCCESS").length,
      runTwice: [...this.runs().values()].filter((pids) => pids.length > 1).length,
      recoverySeconds: Number(recoverySeconds.toFixed(2)),
      ...extra,
    };
    console.log(`[fault figures] ${JSON.stringify(figures)}`);
    if (figures.lost > 0) this.explain(statuses);
    return figures;
  }

  /** What a failing run needs: the lost tasks, and every worker's warnings and errors. */
  explain(statuses: string[] = []): void {
    const runs = this.runs();
    const lost = this.results
      .map((r, i) => ({ i, id: r.id, status: statuses[i], runs: runs.get(i) ?? [] }))
      .filter((_r, i) => statuses[i] !== "SUCCESS");
    console.log(`[fault lost] ${JSON.stringify(lost.slice(0, 20))}`);
    for (const [n, worker] of this.workers.entries()) {
      const file = join(tmpdir(), `celery-ts-fault-${this.scenario}-${n}-${worker.child.pid}.log`);
      writeFileSync(file, worker.stderr);
      const notable = worker.lines.filter(
        (l) => !["task started", "task succeeded"].includes(String(l.msg)),
      );
      console.log(`[fault worker ${n}] full log: ${file}; ${JSON.stringify(notable.slice(0, 40))}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()));
    await this.client.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
