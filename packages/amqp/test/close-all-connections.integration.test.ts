import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import {
  createMemoryBackend,
  defineTask,
  isCeleryTsError,
  silentLogger,
  type Logger,
  type Transport,
} from "@celery-ts/core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
// Not yet devDependencies of this package (see the README): imported from the workspace.
import { createWorker } from "@celery-ts/worker";
import { createAmqpTransport } from "../src/index.ts";
import { parseAmqpUrl } from "../src/internal/parse-url.ts";
import { BROKER_URL, sleep, until } from "./support/rabbit.ts";
import { message } from "./support/transports.ts";

// Fault test: an operator's `rabbitmqctl close_all_connections` (or a node restart) drops every
// connection of the vhost. It runs on a vhost of its own, made and deleted here, so that no
// other test's connections are closed. Each rabbitmqctl call takes seconds on a loaded machine.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 60_000 });

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]) => run("rabbitmqctl", args, { timeout: 60_000 });
const base = parseAmqpUrl(BROKER_URL);
const vhost = `celery-ts-fault-${randomUUID().slice(0, 8)}`;
const url = `amqp://${encodeURIComponent(base.username)}:${encodeURIComponent(base.password)}@${base.hostname}:${base.port}/${vhost}`;

beforeAll(async () => {
  await rabbitmqctl("add_vhost", vhost);
  await rabbitmqctl("set_permissions", "-p", vhost, base.username, ".*", ".*", ".*");
});
afterAll(async () => {
  await rabbitmqctl("delete_vhost", vhost);
});

async function closeAllConnections(): Promise<void> {
  await rabbitmqctl("close_all_connections", "-p", vhost, "closed by a celery-ts fault test");
}

/** A logger that keeps the messages at each level. */
function recordingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (msg: string) => void lines.push({ level, msg });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), lines };
}

/** A promise and the function that resolves it. */
function opened(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** Publishes, retrying while the producer's own connection comes back. */
async function publishEventually(
  producer: Transport,
  queue: string,
  id: number,
  gated: boolean,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await producer.publish(message({ task: "fault.work", args: [id, gated] }), {
        queue,
      });
    } catch (error) {
      if (!isCeleryTsError(error, "CONNECTION") || attempt > 100) throw error;
      await sleep(100);
    }
  }
}

describe("rabbitmqctl close_all_connections on the worker's vhost", () => {
  it("the worker reconnects and runs every task, those in flight and those sent after", async () => {
    const queue = "fault-close-all";
    const runs = new Map<number, number>();
    const running = new Set<number>();
    let gate = opened();
    const work = defineTask(
      "fault.work",
      async (id: number, gated: boolean) => {
        running.add(id);
        // Held until the connections are closed: the close lands mid-task, whatever the load.
        await (gated ? gate.promise : sleep(10));
        running.delete(id);
        runs.set(id, (runs.get(id) ?? 0) + 1);
        return id;
      },
      { queue },
    );
    const logger = recordingLogger();
    const options = { url, reconnectInitialDelay: 0.05, reconnectMaxDelay: 1 };
    const transport = createAmqpTransport({ ...options, logger });
    const producer = createAmqpTransport({ ...options, logger: silentLogger });
    const worker = createWorker({
      broker: transport,
      backend: createMemoryBackend(),
      tasks: [work],
      queues: [queue],
      concurrency: 4,
      shutdownTimeout: 5,
    });
    await worker.start();
    const figures: Record<string, number>[] = [];
    try {
      let next = 0;
      for (const phase of ["mid-batch", "idle", "mid-batch again"]) {
        gate = opened();
        if (phase !== "idle") {
          for (let i = 0; i < 12; i++) await publishEventually(producer, queue, next++, true);
          await until(() => running.size === 4, 20_000, "the worker to run 4 at a time");
        }
        await closeAllConnections();
        const closedAt = Date.now();
        const inFlight = running.size;
        gate.resolve();
        for (let i = 0; i < 8; i++) await publishEventually(producer, queue, next++, false);
        const all = Array.from({ length: next }, (_, id) => id);
        // Bounded: a task still not run after it is counted as lost (and fails the test below).
        await until(() => all.every((id) => runs.has(id)), 60_000).catch(() => undefined);
        const doneInMs = Date.now() - closedAt;
        const lost = all.filter((id) => !runs.has(id)).length;
        const runTwice = [...runs.values()].filter((count) => count > 1).length;
        figures.push({ tasks: next, inFlight, lost, runTwice, allDoneInMs: doneInMs });
      }
      console.log("close_all_connections fault test", { vhost, figures });
      // Nothing lost, and nothing run twice (the redelivered copies of the tasks in flight are
      // acknowledged without running: the result backend has their outcome).
      expect(figures.map(({ lost, runTwice }) => ({ lost, runTwice }))).toEqual(
        figures.map(() => ({ lost: 0, runTwice: 0 })),
      );
      // Each loss and each recovery of the worker's connection is logged once.
      const lost = logger.lines.filter((l) => /transport lost its connection/.test(l.msg));
      const back = logger.lines.filter((l) => /transport reconnected/.test(l.msg));
      expect(lost.map((l) => l.level)).toEqual(["warn", "warn", "warn"]);
      expect(back.map((l) => l.level)).toEqual(["info", "info", "info"]);
    } finally {
      await worker.stop();
      await producer.close();
      await transport.close();
    }
  });
});

describe("reconnectAttempts", () => {
  it("ends consume() with the CONNECTION error once that many attempts in a row failed", async () => {
    const transport = createAmqpTransport({
      url: "amqp://guest:guest@127.0.0.1:1//",
      reconnectInitialDelay: 0.01,
      reconnectMaxDelay: 0.02,
      reconnectAttempts: 3,
    });
    const error = await transport
      .consume(["never"], () => undefined, { prefetch: 1, signal: new AbortController().signal })
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    await transport.close();
  });

  it("is a whole number of 1 or more, or Infinity", () => {
    expect(() => createAmqpTransport({ reconnectAttempts: 0 })).toThrow(/reconnectAttempts/);
    expect(() => createAmqpTransport({ reconnectAttempts: Infinity })).not.toThrow();
  });
});
