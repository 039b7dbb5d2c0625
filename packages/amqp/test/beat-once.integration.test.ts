// Beat on RabbitMQ with a Redis store sends in two steps (record `sending`, publish, record
// `sent`): a leader killed between publishing a tick and recording it sent leaves `sending`, and
// the next leader publishes the tick again with its id. Both copies reach the queue; a celery-ts
// worker with the store claims the tick before running it, so it runs once and the second copy
// is acknowledged without running.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { currentTask, decodeJson, defineTask, resolveStore } from "@celery-ts/core";
import {
  captureLogger,
  startPythonWorker,
  testServers,
  type CapturedLine,
} from "@celery-ts/testing";
import { createBeat, createWorker } from "@celery-ts/worker";
import { afterEach, describe, expect, it, vi } from "vitest";
import { rabbitAdmin, until } from "./support/rabbit.ts";

// A node process that starts the CLI: slow on a loaded machine.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 30_000 });

const { redisUrl: REDIS_URL, amqpUrl: AMQP_URL } = testServers();
const CLI = fileURLToPath(import.meta.resolve("@celery-ts/worker/cli"));
const LEASE_S = 2;

/** The lines a captured logger was told that start with `message`. */
const said = (logger: ReturnType<typeof captureLogger>, message: string): CapturedLine[] =>
  logger.lines.filter((line) => line.message.startsWith(message));

const admin = rabbitAdmin();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await admin.cleanup();
});

/** Deletes a namespace's beat keys and the claims of its ticks from the shared Redis. */
async function clearKeys(namespace: string, ids: Iterable<string>): Promise<void> {
  const store = await resolveStore(REDIS_URL);
  try {
    const keys = await store.list(`beat:${namespace}:`);
    for (const id of ids) keys.push(...(await store.list(`once:${id}`)));
    for (const { key, value } of keys) await store.deleteIfEquals(key, value);
  } finally {
    await store.close();
  }
}

/** `celery-ts beat` as a child that SIGKILLs itself as its first publish returns. */
async function crashingLeader(args: string[]): Promise<void> {
  const child = spawn(process.execPath, [CLI, "beat", ...args, "--log-format", "json"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, CELERY_TS_BEAT_TEST_CRASH: "after-publish" },
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.on("exit", (c, s) => resolve([c, s])),
  );
  if (signal !== "SIGKILL") throw new Error(`the beat exited ${code ?? signal}:\n${stderr}`);
}

describe("beat on RabbitMQ with a Redis store: a tick sent twice by a failover", () => {
  it("runs once on celery-ts workers; the second copy is acknowledged without running", async () => {
    const namespace = `once-${randomUUID().slice(0, 8)}`;
    const queue = `beat-once-${randomUUID()}`;
    admin.trackCeleryQueue(queue);
    const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-once-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const entries = [{ name: "second", task: "amqp.once.tick", every: 1, options: { queue } }];
    const schedule = join(dir, "schedule.json");
    await writeFile(schedule, JSON.stringify(entries));
    const sentIds = new Set<string>();
    cleanups.push(() => clearKeys(namespace, sentIds));

    // The leader dies as its first publish returns: the tick is on the queue, recorded `sending`.
    const flags = { broker: AMQP_URL, store: REDIS_URL, schedule, namespace, lease: LEASE_S };
    await crashingLeader(
      Object.entries(flags).flatMap(([flag, value]) => [`--${flag}`, `${value}`]),
    );
    const store = await resolveStore(REDIS_URL);
    const raw = await store.get(`beat:${namespace}:last:second`);
    await store.close();
    const record = decodeJson(raw ?? "null") as { state: string; id: string } | null;
    expect(record).toMatchObject({ state: "sending" });
    const killedId = record!.id;
    sentIds.add(killedId);

    // The next leader publishes that tick again (same id), then three more.
    const next = captureLogger();
    const beat = createBeat({
      broker: AMQP_URL,
      store: REDIS_URL,
      namespace,
      entries,
      leaseSeconds: LEASE_S,
      logger: next,
    });
    cleanups.push(() => beat.stop());
    await beat.start();
    const sends = (): CapturedLine[] => said(next, "beat: sent");
    await until(() => sends().length >= 4, 60_000, "four sends from the next leader");
    await beat.stop();
    for (const line of sends()) sentIds.add(String(line.fields?.id));
    const messages = 1 + sends().length;
    expect(sends().filter((l) => l.fields?.id === killedId)).toHaveLength(1);
    // Both copies of the killed leader's tick are on the queue.
    expect(await admin.messageCount(queue)).toBe(messages);

    // A celery-ts worker with the store (as `--store`) runs what is on the queue.
    const runs = new Map<string, number>();
    const tick = defineTask("amqp.once.tick", () => {
      const { id } = currentTask();
      runs.set(id, (runs.get(id) ?? 0) + 1);
    });
    const work = captureLogger();
    const worker = createWorker({
      broker: AMQP_URL,
      store: REDIS_URL,
      tasks: [tick],
      queues: [queue],
      concurrency: 2,
      logger: work,
    });
    cleanups.push(() => worker.stop());
    await worker.start();
    const claimed = (): CapturedLine[] => said(work, "beat tick already claimed");
    const settled = (): number => said(work, "task succeeded").length + claimed().length;
    // Every copy taken and settled (run, or acknowledged as claimed), and none left on the queue.
    await until(
      async () => settled() >= messages && (await admin.messageCount(queue)) === 0,
      60_000,
      "every copy settled",
    );
    await worker.stop();
    expect(await admin.messageCount(queue)).toBe(0);

    const figures = {
      messages,
      ticks: sentIds.size,
      runs: [...runs.values()].reduce((a, b) => a + b, 0),
      killedLeadersTickRuns: runs.get(killedId),
      acknowledgedAsClaimed: claimed().length,
    };
    process.stdout.write(`beat once on RabbitMQ: ${JSON.stringify(figures)}\n`);
    expect(runs.get(killedId)).toBe(1);
    expect([...runs.keys()].sort()).toEqual([...sentIds].sort());
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(claimed().map((l) => l.fields?.id)).toEqual([killedId]);
  });
});

describe("beat on RabbitMQ with a Redis store, and Python Celery", () => {
  it("a Python Celery worker runs ticks carrying the claim header (it ignores it)", async () => {
    const namespace = `once-py-${randomUUID().slice(0, 8)}`;
    const queue = `beat-once-py-${randomUUID()}`;
    admin.trackCeleryQueue(queue);
    // Python workers declare Celery's remote-control exchange on the broker.
    admin.trackSharedExchange("celery.pidbox");
    const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-once-py-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const log = join(dir, "record.log");
    await writeFile(log, "");
    const python = await startPythonWorker({
      brokerUrl: AMQP_URL,
      resultBackend: "rpc://",
      queues: [queue],
      env: { INTEROP_LOG: log },
    });
    cleanups.push(() => python.stop());
    const sent = captureLogger();
    const beat = createBeat({
      broker: AMQP_URL,
      store: REDIS_URL,
      namespace,
      entries: [
        { name: "record", task: "interop.record", every: 1, args: [21], options: { queue } },
      ],
      leaseSeconds: LEASE_S,
      logger: sent,
    });
    const ids = (): string[] => said(sent, "beat: sent").map((l) => String(l.fields?.id));
    cleanups.push(() => clearKeys(namespace, ids()));
    cleanups.push(() => beat.stop());
    await beat.start();
    expect(said(sent, "beat: started")[0]?.fields?.sending).toBe("at least once (two steps)");
    const lines = async (): Promise<string[]> =>
      (await readFile(log, "utf8")).split("\n").filter(Boolean);
    await until(async () => (await lines()).length >= 2, 60_000, "two ticks run by Python");
    expect((await lines()).slice(0, 2)).toEqual(["21 python", "21 python"]);
    expect(python.output()).not.toMatch(/Traceback|ERROR/);
  });
});
