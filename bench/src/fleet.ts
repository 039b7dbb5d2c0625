// A fleet-wide rate limit measured: three `celery-ts worker` processes share one limit through a
// coordination store (Redis, PostgreSQL), with far more tasks queued than the limit lets through,
// and the rate the fleet actually runs at is counted over a minute (BENCH_FLEET_SECONDS). The
// broker is Redis in both runs, so that what is measured is the limit, not the broker.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@celery-ts/client";
import { declareTask } from "@celery-ts/core";
import { sleep } from "@celery-ts/core/driver";
import { deleteRedisPrefix } from "@celery-ts/testing";
import pg from "pg";
import { FLEET_RATE } from "./fleet-tasks.ts";
import type { Section } from "./report.ts";

const CLI = fileURLToPath(import.meta.resolve("@celery-ts/worker/cli"));
const TASKS = join(import.meta.dirname, "fleet-tasks.ts");
const REDIS_URL = process.env.CELERY_TS_REDIS_URL ?? "redis://127.0.0.1:6379/0";
const PG_URL = process.env.CELERY_TS_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const WORKERS = 3;
/** Seconds after the first run before counting starts: the workers' start-up is not measured. */
const WARM_UP_S = 3;

interface Store {
  name: string;
  /** The store's URL: the broker's too when it is Redis. */
  url: string;
  cleanup(): Promise<void>;
}

interface Measured {
  rate: number;
  runs: number;
  minSecond: number;
  maxSecond: number;
  workersThatRan: number;
}

function readRuns(log: string): { pid: string; at: number }[] {
  return readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [pid, at] = line.split(" ");
      return { pid: pid!, at: Number(at) };
    });
}

async function measure(broker: string, store: Store, seconds: number): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), "celery-ts-bench-fleet-"));
  const log = join(dir, "runs.log");
  writeFileSync(log, "");
  const queue = `bench-fleet-${randomUUID()}`;
  const client = createClient({ broker });
  const workers: ChildProcess[] = [];
  try {
    // More than the run can take, so the workers are never short of work.
    const total = FLEET_RATE * (WARM_UP_S + seconds + 15);
    const handle = client.task(declareTask<[]>("bench.fleet_limited", { queue }));
    for (let i = 0; i < total; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, total - i) }, () => handle.delay()));
    }
    for (let n = 0; n < WORKERS; n++) {
      const args = ["worker", "--app", TASKS, "--broker", broker, "--store", store.url];
      workers.push(
        spawn(
          process.execPath,
          [CLI, ...args, "--queues", queue, "--processes", "1", "--log-level", "warn"],
          {
            env: { ...process.env, BENCH_FLEET_LOG: log },
            stdio: ["ignore", "ignore", "inherit"],
          },
        ),
      );
    }
    while (readRuns(log).length === 0) await sleep(200);
    const from = readRuns(log)[0]!.at + WARM_UP_S * 1000;
    const to = from + seconds * 1000;
    while (Date.now() < to + 1_000) await sleep(500);
    const runs = readRuns(log).filter((r) => r.at >= from && r.at < to);
    const perSecond = new Array<number>(seconds).fill(0);
    for (const r of runs) perSecond[Math.floor((r.at - from) / 1000)]! += 1;
    return {
      rate: runs.length / seconds,
      runs: runs.length,
      minSecond: Math.min(...perSecond),
      maxSecond: Math.max(...perSecond),
      workersThatRan: new Set(runs.map((r) => r.pid)).size,
    };
  } finally {
    for (const worker of workers) worker.kill("SIGTERM");
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.exitCode !== null || w.signalCode !== null) resolve();
            else w.on("exit", () => resolve());
          }),
      ),
    );
    await client.close();
    rmSync(dir, { recursive: true, force: true });
    await store.cleanup();
  }
}

function redisStore(): Store {
  const prefix = `celery-ts-bench:fleet:${randomUUID()}:`;
  return {
    name: "Redis",
    url: `${REDIS_URL}?global_keyprefix=${prefix}`,
    cleanup: () => deleteRedisPrefix(REDIS_URL, prefix),
  };
}

function postgresStore(): Store {
  const schema = `celery_ts_bench_fleet_${randomUUID().slice(0, 8)}`;
  return {
    name: "PostgreSQL",
    url: `${PG_URL}?schema=${schema}`,
    async cleanup() {
      const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

export async function fleetSection(seconds: number): Promise<Section> {
  const stores = [redisStore(), postgresStore()];
  const broker = stores[0]!.url;
  const results: Measured[] = [];
  for (const store of stores) {
    console.error(`bench: fleet rate limit on ${store.name}, ${seconds} s...`);
    results.push(await measure(broker, store, seconds));
  }
  await stores[0]!.cleanup();
  const deviation = (m: Measured): string =>
    `${(((m.rate - FLEET_RATE) / FLEET_RATE) * 100).toFixed(2)}%`;
  return {
    title: `Fleet-wide rate limit: ${FLEET_RATE}/s shared by ${WORKERS} worker processes, counted over ${seconds} s`,
    columns: stores.map((s) => `store on ${s.name}`),
    rows: [
      { scenario: "observed rate", cells: results.map((m) => `${m.rate.toFixed(2)}/s`) },
      { scenario: "off the limit by", cells: results.map(deviation) },
      {
        scenario: "runs per second, fewest / most",
        cells: results.map((m) => `${m.minSecond} / ${m.maxSecond}`),
      },
      {
        scenario: "worker processes that ran tasks",
        cells: results.map((m) => `${m.workersThatRan} of ${WORKERS}`),
      },
    ],
    notes: `Each worker is a \`celery-ts worker --processes 1\` process (concurrency 10) on one Redis queue holding
more no-op tasks than the run can take, with \`--store\` naming the store; the task's \`rateLimit: { rate: "${FLEET_RATE}/s", scope: "fleet" }\` is counted
in fixed one-second windows in the named store. Runs are counted from their start
times, from ${WARM_UP_S} s after the first run (start-up is not measured), in whole seconds.`,
  };
}
