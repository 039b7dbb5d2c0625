// `pnpm bench`: end-to-end throughput and round-trip latency on the SQLite default, written to
// bench/RESULTS.md with the machine and the date. Figures from one run on a shared machine are
// noisy: compare ratios within a run, not absolute numbers across runs.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, platform, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import { noop } from "./tasks.ts";

const here = join(import.meta.dirname, "..");
const cli = join(here, "node_modules/.bin/celery-ts");

interface Row {
  scenario: string;
  figure: string;
}

function startWorker(url: string, processes: number): ChildProcess {
  return spawn(
    cli,
    [
      "worker",
      "--app",
      join(here, "src/tasks.ts"),
      "--broker",
      url,
      "--backend",
      url,
      "--processes",
      String(processes),
      "--concurrency",
      "50",
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
}

async function stopWorker(worker: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => worker.on("exit", resolve));
  worker.kill("SIGTERM");
  await exited;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "celery-ts-bench-"));
  try {
    // An absolute path: sqlite:/// plus "/tmp/...", SQLAlchemy's four slashes.
    return await fn(`sqlite:///${join(dir, "bench.db")}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function warmUp(client: Client): Promise<void> {
  const handle = client.task(noop);
  await Promise.all(
    Array.from({ length: 50 }, async (_, i) => (await handle.delay(i)).get({ timeout: 60 })),
  );
}

/** Enqueue then process: tasks/s from the first send to the last stored result. */
async function throughput(processes: number, total: number): Promise<Row[]> {
  return withDatabase(async (url) => {
    const client = createClient({ broker: url, backend: url });
    const worker = startWorker(url, processes);
    await warmUp(client);
    const handle = client.task(noop);
    const started = performance.now();
    const results = [];
    for (let i = 0; i < total; i++) results.push(await handle.delay(i));
    const enqueued = performance.now();
    await Promise.all(results.map((r) => r.get({ timeout: 300 })));
    const finished = performance.now();
    await client.close();
    await stopWorker(worker);
    const rows = [
      {
        scenario: `end-to-end, 1 producer, ${processes} worker process${processes > 1 ? "es" : ""}`,
        figure: `${Math.round(total / ((finished - started) / 1000))} tasks/s`,
      },
    ];
    if (processes === 1) {
      rows.unshift({
        scenario: "enqueue, one by one (awaited delay())",
        figure: `${Math.round(total / ((enqueued - started) / 1000))} tasks/s`,
      });
    }
    return rows;
  });
}

/** One task at a time: send, then await its result. */
async function latency(rounds: number): Promise<Row[]> {
  return withDatabase(async (url) => {
    const client = createClient({ broker: url, backend: url });
    const worker = startWorker(url, 1);
    await warmUp(client);
    const handle = client.task(noop);
    const samples: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      await (await handle.delay(i)).get({ timeout: 60 });
      samples.push(performance.now() - started);
    }
    await client.close();
    await stopWorker(worker);
    samples.sort((a, b) => a - b);
    return [
      {
        scenario: `round trip p50 (send, then await result; ${rounds} rounds)`,
        figure: `${percentile(samples, 50).toFixed(2)} ms`,
      },
      { scenario: "round trip p99", figure: `${percentile(samples, 99).toFixed(2)} ms` },
    ];
  });
}

const total = Number(process.env.CELERY_TS_BENCH_TASKS ?? 5_000);
const rows: Row[] = [
  ...(await throughput(1, total)),
  ...(await throughput(4, total)),
  ...(await latency(500)),
];

const cpu = cpus()[0]?.model ?? "unknown CPU";
const report = `# Benchmark results

Written by \`pnpm bench\` on ${new Date().toISOString().slice(0, 10)}.
Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}, Node ${process.version}.
The machine is shared and noisy: read figures as orders of magnitude, and compare within a run.

## SQLite (embedded default): ${total} no-op tasks, worker concurrency 50 per process

| scenario | figure |
| --- | --- |
${rows.map((r) => `| ${r.scenario} | ${r.figure} |`).join("\n")}

Every send, claim, result and ack is a write transaction on one file, and SQLite has one writer
at a time: more worker processes than cores add lock contention rather than throughput for
no-op tasks. They pay off when tasks do real work (or block their event loop).
`;
writeFileSync(join(here, "RESULTS.md"), report);
console.log(report);
