import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTaskMessage, encodeTaskMessage } from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteTransport } from "../src/index.ts";
import type { ConsumerArgs, ConsumerReport } from "./support/consumer-process.ts";
import { withRawDb } from "./support/raw-db.ts";
import { useTempDir } from "./support/temp-dir.ts";
import { sleep } from "@celery-ts/core/driver";

const CONSUMER = fileURLToPath(new URL("./support/consumer-process.ts", import.meta.url));

interface Child {
  process: ChildProcess;
  reports: ConsumerReport[];
  delivered(): Extract<ConsumerReport, { type: "delivered" }>[];
  acked(): string[];
  /** Asks the child to stop consuming and close its transport, and waits for it to exit. */
  stop(): Promise<void>;
}

const children: Child[] = [];

/** Starts a consumer process on the same Node binary and waits until it is consuming. */
async function startConsumer(args: ConsumerArgs): Promise<Child> {
  const child = fork(CONSUMER, [JSON.stringify(args)], {
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const reports: ConsumerReport[] = [];
  const handle: Child = {
    process: child,
    reports,
    delivered: () => reports.filter((r) => r.type === "delivered"),
    acked: () => reports.flatMap((r) => (r.type === "acked" ? [r.id] : [])),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.send("stop");
      await exited;
    },
  };
  children.push(handle);
  const ready = new Promise<void>((resolve, reject) => {
    child.on("message", (report: ConsumerReport) => {
      reports.push(report);
      if (report.type === "ready") resolve();
    });
    child.once("exit", (code, signal) =>
      reject(new Error(`consumer exited early (${code ?? signal})`)),
    );
  });
  await ready;
  return handle;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("several processes on one file", () => {
  const dir = useTempDir();

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.process.exitCode === null && child.process.signalCode === null)
        child.process.kill("SIGKILL");
    }
  });

  it("delivers and acks each of 500 messages exactly once across two consumer processes", async () => {
    const path = join(dir(), "shared.db");
    const queue = `q-${randomUUID()}`;
    const producer = createSqliteTransport({ path });
    await producer.connect();
    const consumers = await Promise.all(
      [1, 2].map(() =>
        startConsumer({ path, queue, mode: "ack", visibilityTimeout: 5, prefetch: 10 }),
      ),
    );

    const sent = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const message = encodeTaskMessage(createTaskMessage({ task: "multi.n", args: [i] }));
      sent.add(String(message.headers.id));
      await producer.publish(message, { queue });
    }
    const acked = (): string[] => consumers.flatMap((c) => c.acked());
    await until(() => acked().length >= 500, 30_000, "500 acks");
    await sleep(300);
    await Promise.all(consumers.map((c) => c.stop()));

    const delivered = consumers.flatMap((c) => c.delivered());
    expect(delivered).toHaveLength(500);
    expect(new Set(delivered.map((d) => d.id))).toEqual(sent);
    expect(delivered.some((d) => d.redelivered)).toBe(false);
    expect(acked()).toHaveLength(500);
    expect(new Set(acked())).toEqual(sent);
    // Both took part: the claims really did compete.
    for (const consumer of consumers) expect(consumer.delivered().length).toBeGreaterThan(0);
    expect(withRawDb(path, (db) => db.all("SELECT count(*) AS n FROM celery_ts_messages"))).toEqual(
      [{ n: 0 }],
    );
    await producer.close();
  }, 60_000);

  it("gives a killed process's unacked messages to a survivor after the lease, marked redelivered", async () => {
    const path = join(dir(), "shared.db");
    const queue = `q-${randomUUID()}`;
    const visibilityTimeout = 1;
    const leaseMs = visibilityTimeout * 1000;
    const producer = createSqliteTransport({ path });
    for (let i = 0; i < 5; i++) {
      await producer.publish(
        encodeTaskMessage(createTaskMessage({ task: "multi.held", args: [i] })),
        { queue },
      );
    }
    const doomed = await startConsumer({
      path,
      queue,
      mode: "hold",
      visibilityTimeout,
      prefetch: 5,
    });
    await until(() => doomed.delivered().length === 5, 10_000, "the doomed consumer's deliveries");
    const held = new Set(doomed.delivered().map((d) => d.id));

    const survivor = await startConsumer({
      path,
      queue,
      mode: "ack",
      visibilityTimeout,
      prefetch: 10,
    });
    // Twice the lease: the living holder keeps renewing, so nothing moves.
    await sleep(2 * leaseMs);
    expect(survivor.delivered()).toHaveLength(0);

    doomed.process.kill("SIGKILL");
    await once(doomed.process, "exit");
    const killedAt = Date.now();
    await until(() => survivor.acked().length === 5, leaseMs + 5_000, "the survivor's acks");
    expect(Date.now() - killedAt).toBeLessThan(leaseMs + 2_000);
    expect(new Set(survivor.delivered().map((d) => d.id))).toEqual(held);
    expect(survivor.delivered().every((d) => d.redelivered)).toBe(true);
    await survivor.stop();
    await producer.close();
  }, 30_000);
});
