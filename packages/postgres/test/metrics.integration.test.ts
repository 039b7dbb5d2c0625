// The worker's Prometheus endpoint counts broker connection losses and reconnects, reported by
// the PostgreSQL transport (`onConnectionEvent`); the loss is real: the server ends the sessions
// of this test's worker (found by the application_name its URL sets), and no other session.
import { randomUUID } from "node:crypto";
import { createClient } from "@celery-ts/client";
import { defineTask, silentLogger, type ConnectionEvent, type Logger } from "@celery-ts/core";
import { createWorker } from "@celery-ts/worker";
import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { until } from "../../worker/test/faults/harness.ts";
import { createPostgresBackend, createPostgresTransport } from "../src/index.ts";
import { PG_URL, useSchema } from "./support/pg.ts";

const { schema } = useSchema("metrics");
const appName = `celery_ts_metrics_${randomUUID().slice(0, 8)}`;
const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
afterAll(() => admin.end());

/** Sessions of this test's worker, those running `where`. */
async function sessions(where = "true"): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND ${where}`,
    [appName],
  );
  return rows[0]!.n;
}

/** Ends this test's worker's sessions, as a server restart would: only the rows the WHERE kept. */
async function terminate(): Promise<number> {
  const { rows } = await admin.query<{ ok: boolean }>(
    "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
    [appName],
  );
  return rows.filter((r) => r.ok).length;
}

const add = defineTask("metrics.add", (a: number, b: number) => a + b);

it("counts the pool's and the LISTEN connection's losses and reconnects, and serves them to a scrape", async () => {
  const url = new URL(PG_URL);
  url.searchParams.set("application_name", appName);
  const transport = createPostgresTransport({ url: url.toString(), schema });
  const events: ConnectionEvent[] = [];
  const stopListening = transport.onConnectionEvent!((event) => events.push(event));
  // Port 0: the system picks one; the worker logs its endpoint's URL.
  let endpoint = "";
  const logger: Logger = {
    ...silentLogger,
    info: (msg, fields) => {
      if (msg === "metrics endpoint listening") endpoint = String(fields?.url);
    },
  };
  const queue = `metrics-${randomUUID()}`;
  const worker = createWorker({
    broker: transport,
    backend: createPostgresBackend({ url: PG_URL, schema }),
    tasks: [add],
    queues: [queue],
    metricsPort: 0,
    logger,
    remoteControl: false,
    heartbeat: false,
  });
  const client = createClient({
    broker: createPostgresTransport({ url: PG_URL, schema }),
    backend: createPostgresBackend({ url: PG_URL, schema }),
  });
  const scrape = async (): Promise<string> => (await fetch(endpoint)).text();
  try {
    await worker.start();
    expect(
      await (await client.sendTask("metrics.add", { args: [1, 2], queue })).get({ timeout: 10 }),
    ).toBe(3);
    await until(async () => (await sessions("query LIKE 'LISTEN%'")) > 0, 10_000, "LISTEN");
    expect(await scrape()).not.toContain("celery_ts_broker_connection_lost_total{");
    expect(await terminate()).toBeGreaterThan(0);
    for (const role of ["command", "listen"]) {
      await until(
        async () =>
          (await scrape()).includes(`celery_ts_broker_reconnects_total{role="${role}"} 1`),
        20_000,
        `the ${role} connection's reconnect to be counted (events so far: ${JSON.stringify(events)})`,
      );
    }
    const text = await scrape();
    // Once each: one cut ends every session, whatever the number of pool connections.
    expect(text).toContain('celery_ts_broker_connection_lost_total{role="command"} 1');
    expect(text).toContain('celery_ts_broker_connection_lost_total{role="listen"} 1');
    // Each loss told before its return.
    for (const role of ["command", "listen"]) {
      expect(events.filter((e) => e.role === role).map((e) => e.type)).toEqual([
        "lost",
        "recovered",
      ]);
    }
    // And the worker works on.
    expect(
      await (await client.sendTask("metrics.add", { args: [2, 2], queue })).get({ timeout: 10 }),
    ).toBe(4);
  } finally {
    stopListening();
    await worker.stop();
    await client.close();
    await transport.close();
  }
}, 60_000);
