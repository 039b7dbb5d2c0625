// The worker's Prometheus endpoint, scraped over HTTP, with a real SQLite broker.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import { defineTask } from "@celery-ts/core";
import { expect, it } from "vitest";
import { createWorker } from "../src/index.ts";

const add = defineTask("metrics.add", (a: number, b: number) => a + b);
const fail = defineTask("metrics.fail", () => {
  throw new Error("no");
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

it("serves tasks by name and state, runtime histograms, prefetch and queue depth", async () => {
  const dir = await mkdtemp(join(tmpdir(), "metrics-"));
  const url = `sqlite:///${join(dir, "q.db")}`;
  const port = await freePort();
  const client = createClient({ broker: url, backend: url });
  const worker = createWorker({
    broker: url,
    backend: url,
    tasks: [add, fail],
    queues: ["celery", "other"],
    metricsPort: port,
    heartbeat: false,
    concurrency: 2,
  });
  try {
    await worker.start();
    // SQLite holds a message with an eta (native delayed delivery): it waits, counted in the depth.
    await client.sendTask("metrics.add", { args: [0, 0], countdown: 600 });
    expect(
      await (await client.sendTask("metrics.add", { args: [1, 2] })).get({ timeout: 10 }),
    ).toBe(3);
    expect(
      await (await client.sendTask("metrics.add", { args: [3, 4] })).get({ timeout: 10 }),
    ).toBe(7);
    await expect((await client.sendTask("metrics.fail")).get({ timeout: 10 })).rejects.toThrow(
      /no/,
    );
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await response.text();
    expect(text).toContain('celery_ts_tasks_total{task="metrics.add",state="received"} 2');
    expect(text).toContain('celery_ts_tasks_total{task="metrics.add",state="succeeded"} 2');
    expect(text).toContain('celery_ts_tasks_total{task="metrics.fail",state="failed"} 1');
    expect(text).toContain('celery_ts_task_runtime_seconds_count{task="metrics.add"} 2');
    expect(text).toMatch(
      /celery_ts_task_runtime_seconds_bucket\{task="metrics.add",le="\+Inf"\} 2/,
    );
    expect(text).toContain("# TYPE celery_ts_task_runtime_seconds histogram");
    expect(text).toContain("celery_ts_prefetch_in_use 0");
    expect(text).toContain("celery_ts_prefetch_limit 6");
    expect(text).toContain('celery_ts_queue_depth{queue="celery"} 1');
    expect(text).toContain('celery_ts_queue_depth{queue="other"} 0');
    expect((await fetch(`http://127.0.0.1:${port}/nothing`)).status).toBe(404);
  } finally {
    await worker.stop();
    await client.close();
    await rm(dir, { recursive: true, force: true });
  }
  // Stopped, the port is free again.
  await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
});
