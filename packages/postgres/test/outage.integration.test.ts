import { randomUUID } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { sleep, until } from "../../worker/test/faults/harness.ts";
import { withBench } from "../../worker/test/faults/scenarios.ts";
// Registers postgres:// for this process's client; the workers load it through their tasks.
import "../src/index.ts";
import { PG_URL } from "./support/pg.ts";

const TASKS = join(import.meta.dirname, "fixtures/fault-tasks.ts");

/** Connections cut while the batch runs, one a second. */
const OUTAGES = 6;
/** Tasks: enough for the batch to outlast the cuts. */
const LOAD = 1200;

// An outage of the shared PostgreSQL without restarting it: every session of this test's workers
// and client (found by the application_name its URL sets) is terminated, as a server restart or a
// failover would end them, several times during a batch. Another test's sessions are untouched.
describe("PostgreSQL outage (sessions terminated)", () => {
  const tag = randomUUID().slice(0, 8);
  const schema = `faults_${tag}`;
  const appName = `celery_ts_faults_${tag}`;
  const url = new URL(PG_URL);
  url.searchParams.set("schema", schema);
  url.searchParams.set("application_name", appName);
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });
  const terminate = async (): Promise<number> => {
    // In the select list, so that only the rows the WHERE kept are terminated.
    const { rows } = await admin.query<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
      [appName],
    );
    return rows.filter((r) => r.ok).length;
  };

  it("connections terminated repeatedly mid-batch: the workers keep going, nothing lost, every result stored, the drop and the recovery logged once each", async () => {
    await withBench(
      "postgres-sessions-terminated",
      url.toString(),
      url.toString(),
      async (bench) => {
        // Queued before the workers start: 1,200 tasks of 10-50 ms on 4 slots take them about
        // 9 s, so the cuts (after 50 completions, 1 s apart) come mid-batch however fast the
        // producer or the machine is (published while they ran, most were done by the first).
        await bench.publish(LOAD);
        const workers = [
          bench.startWorker(["--processes", "1", "--concurrency", "2"]),
          bench.startWorker(["--processes", "1", "--concurrency", "2"]),
        ];
        await Promise.all(workers.map((w) => w.waitForLog("worker ready")));
        await until(() => bench.completed() >= 50, 60_000, "50 completions");
        const terminated: number[] = [];
        const completedAtFault: number[] = [];
        for (let i = 0; i < OUTAGES; i++) {
          if (i > 0) await sleep(1_000);
          completedAtFault.push(bench.completed());
          terminated.push(await terminate());
          bench.fault();
        }
        const recovery = await bench.recovered();
        const figures = await bench.figures(recovery, 90, { terminated, completedAtFault });
        // What each worker logged about the cuts (debug lines and tasks aside).
        const outageLines = workers.map((worker) =>
          worker.lines
            .filter((l) => l.level !== "debug")
            .map((l) => String(l.msg))
            .filter((msg) => /^postgres |^could not|^the server is back/.test(msg)),
        );
        console.log(`[fault figures] outage log lines: ${JSON.stringify(outageLines)}`);
        expect(figures.lost).toBe(0);
        // Mid-batch: the last cut came before the batch was done.
        expect(completedAtFault.at(-1)).toBeLessThan(LOAD);
        for (const [n, worker] of workers.entries()) {
          expect(worker.child.exitCode).toBe(null);
          const lines = outageLines[n]!;
          // Each connection logs its loss once and its return once, alternately, whatever the
          // number of sessions or statements the cut ended; the transport's always comes back.
          for (const [lost, back] of [
            ["postgres transport: lost the connection", "postgres transport: reconnected to"],
            ["postgres transport: lost the LISTEN", "postgres transport: reconnected the LISTEN"],
            ["postgres result backend: lost the", "postgres result backend: reconnected"],
          ] as const) {
            const events = lines
              .filter((l) => l.startsWith(lost) || l.startsWith(back))
              .map((l) => (l.startsWith(lost) ? "lost" : "back"));
            expect(events.length % 2).toBe(0);
            expect(events.length / 2).toBeLessThanOrEqual(OUTAGES);
            expect(events).toEqual(events.map((_e, i) => (i % 2 === 0 ? "lost" : "back")));
          }
          expect(lines.some((l) => l.startsWith("postgres transport: reconnected to"))).toBe(true);
          // Nothing else per failed statement: a take that failed is retried quietly.
          expect(lines.filter((l) => l.includes("could not take messages"))).toEqual([]);
        }
      },
      TASKS,
    );
  }, 180_000);
});
