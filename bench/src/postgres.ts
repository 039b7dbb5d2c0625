// PostgreSQL, side by side in one run: celery-ts on PostgreSQL, on SQLite and on Redis, and
// pg-boss on the same PostgreSQL database. Everything in-process (no process start-up).
import "@celery-ts/postgres"; // registers postgres:// with core
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { PgBoss } from "pg-boss";
import { celeryTsFigures, type Setup } from "./celery-ts.ts";
import { cell, chunks, latencyPercentile, type Figures } from "./figures.ts";
import { redisSetup } from "./redis.ts";
import type { Section } from "./report.ts";
import { SERVERS } from "./servers.ts";
import { perSecond, timed, until } from "./stats.ts";

const PG_URL = SERVERS.postgresUrl;
const SCHEMA = "celery_ts_bench";
const BOSS_SCHEMA = "pgboss_bench";

/** A queue of its own for every scenario: nothing left over, without emptying shared tables. */
const freshQueue = async (): Promise<string> => `bench-${randomUUID()}`;

const postgresSetup: Setup = {
  broker: `${PG_URL}?schema=${SCHEMA}`,
  backend: `${PG_URL}?schema=${SCHEMA}`,
  fresh: freshQueue,
};

function sqliteSetup(): Setup {
  const url = `sqlite:///${join(mkdtempSync(join(tmpdir(), "celery-ts-bench-")), "bench.db")}`;
  return { broker: url, backend: url, fresh: freshQueue };
}

/** pg-boss 12 on the same database (schema `pgboss_bench`): send, insert, work. */
async function pgBoss(total: number): Promise<Figures> {
  const boss = new PgBoss({ connectionString: PG_URL, schema: BOSS_SCHEMA });
  boss.on("error", () => {});
  await boss.start();
  const queue = async (): Promise<string> => {
    const name = `bench-${randomUUID()}`;
    await boss.createQueue(name);
    return name;
  };
  const send = async (name: string, count: number, bulk: boolean): Promise<number> =>
    perSecond(
      count,
      await timed(async () => {
        if (bulk)
          for (const chunk of chunks(count, 1_000))
            await boss.insert(
              name,
              chunk.map((n) => ({ data: { n } })),
            );
        else for (let n = 0; n < count; n++) await boss.send(name, { n });
      }),
    );
  const figures: Figures = {};
  try {
    figures.enqueueOne = await send(await queue(), total / 4, false);
    figures.enqueueBulk = await send(await queue(), total, true);
    for (const [concurrency, count] of [
      [50, total],
      [1, total / 10],
    ] as const) {
      const name = await queue();
      await send(name, count, true);
      let done = 0;
      const ms = await timed(async () => {
        await boss.work(
          name,
          { localConcurrency: concurrency, batchSize: 1, pollingIntervalSeconds: 0.5 },
          async () => void done++,
        );
        await until(() => done, count);
      });
      await boss.offWork(name);
      figures[concurrency === 50 ? "process50" : "process1"] = perSecond(count, ms);
    }
  } finally {
    await boss.stop({ graceful: false });
  }
  return figures;
}

/** The shared database keeps nothing of the run. */
async function dropBenchSchemas(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${SCHEMA}", "${BOSS_SCHEMA}" CASCADE`);
  } finally {
    await client.end();
  }
}

export async function postgresSection(total: number): Promise<Section> {
  const ours = await celeryTsFigures(total, postgresSetup);
  const sqlite = await celeryTsFigures(total, sqliteSetup());
  const redis = await celeryTsFigures(total, redisSetup);
  const boss = await pgBoss(total);
  await dropBenchSchemas();
  const systems = [ours, sqlite, redis, boss];
  const row = (
    scenario: string,
    pick: (f: Figures) => number | undefined,
    unit: string,
    lowerIsBetter = false,
  ) => ({ scenario, cells: systems.map((f) => cell(pick(f), pick(ours), unit, lowerIsBetter)) });
  return {
    title: `PostgreSQL: celery-ts on PostgreSQL, SQLite and Redis, and pg-boss 12 on the same database (${total} no-op tasks)`,
    columns: ["celery-ts, PostgreSQL", "celery-ts, SQLite", "celery-ts, Redis", "pg-boss"],
    rows: [
      row(`enqueue one by one (${total / 4}, each awaited)`, (f) => f.enqueueOne, "/s"),
      row(`enqueue in bulk (${total}, batches of 1,000)`, (f) => f.enqueueBulk, "/s"),
      row(`process, concurrency 50 (${total} queued)`, (f) => f.process50, "/s"),
      row(`process, concurrency 1 (${total / 10} queued)`, (f) => f.process1, "/s"),
      row(
        "round trip p50 (send, then await the result)",
        (f) => latencyPercentile(f, 50),
        "ms",
        true,
      ),
      row("round trip p99", (f) => latencyPercentile(f, 99), "ms", true),
    ],
    notes: `Ratios are to celery-ts on PostgreSQL in the same run (above 1× is better, for latency
too). celery-ts stores every result (in the broker's database, or Redis) and acknowledges after
storing; pg-boss stores job state in its own table and has no result to await, so it has no round
trip. pg-boss polls every 0.5 s (its minimum) and fetches one job per poll per slot
(\`batchSize: 1\`, \`localConcurrency\` as the concurrency); celery-ts on PostgreSQL is woken by
NOTIFY.`,
  };
}
