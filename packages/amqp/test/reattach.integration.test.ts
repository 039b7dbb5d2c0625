import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { isCeleryTsError, type Logger, type ResultMeta } from "@celery-ts/core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createAmqpBroadcast, createRpcBackend } from "../src/index.ts";
import { parseAmqpUrl } from "../src/internal/parse-url.ts";
import { BROKER_URL, until } from "./support/rabbit.ts";
import { message } from "./support/transports.ts";

// After `rabbitmqctl close_all_connections`, the rpc backend's reply queue and the remote
// control's broadcast queues are declared again on the new connection. When that fails (here:
// the user may not configure anything in the vhost for a while), it is retried as the connection
// is (its backoff, at most `reconnectAttempts` in a row), not given up after one warning. On a
// vhost of this file's own, made and deleted here: no other test's connections are closed.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 60_000 });

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]) => run("rabbitmqctl", args, { timeout: 60_000 });
const base = parseAmqpUrl(BROKER_URL);
const vhost = `celery-ts-reattach-${randomUUID().slice(0, 8)}`;
const url = `amqp://${encodeURIComponent(base.username)}:${encodeURIComponent(base.password)}@${base.hostname}:${base.port}/${vhost}`;

/** The user may configure (declare) anything in the vhost, or nothing. */
const allowConfigure = (allowed: boolean) =>
  rabbitmqctl("set_permissions", "-p", vhost, base.username, allowed ? ".*" : "^$", ".*", ".*");

beforeAll(async () => {
  await rabbitmqctl("add_vhost", vhost);
  await allowConfigure(true);
});
afterAll(async () => {
  await rabbitmqctl("delete_vhost", vhost);
});

/** Every connection of the vhost closed, with nothing declarable until `allowConfigure(true)`. */
async function closeAllAndRefuseDeclarations(): Promise<void> {
  await allowConfigure(false);
  await rabbitmqctl("close_all_connections", "-p", vhost, "closed by a celery-ts fault test");
}

function recordingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (msg: string) => void lines.push({ level, msg });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), lines };
}

const has = (logger: ReturnType<typeof recordingLogger>, level: string, text: string) =>
  logger.lines.some((l) => l.level === level && l.msg.includes(text));

const success = (taskId: string): ResultMeta => ({
  status: "SUCCESS",
  result: 42,
  traceback: null,
  children: [],
  date_done: new Date().toISOString(),
  task_id: taskId,
});

const RETRY = { reconnectInitialDelay: 0.05, reconnectMaxDelay: 0.5 };

describe("set up again after close_all_connections, retried with the connection's policy", () => {
  it("rpc backend: the reply queue is read again once it can be declared; a result sent then arrives", async () => {
    const logger = recordingLogger();
    const inbox = createRpcBackend({ url, ...RETRY, logger });
    const worker = createRpcBackend({ url, ...RETRY });
    try {
      const replyTo = await inbox.replyTo();
      await closeAllAndRefuseDeclarations();
      const again = `read the reply queue "${replyTo}" again`;
      try {
        await until(() => has(logger, "warn", `${again}: failed; retrying`), 60_000, "a failure");
        // Tried again, not given up after the first failure.
        await until(
          () => logger.lines.filter((l) => l.msg.includes(`${again}: failed`)).length >= 3,
          60_000,
          "three attempts",
        );
      } finally {
        await allowConfigure(true);
      }
      await until(() => has(logger, "info", `${again}: done again`), 60_000, "the queue read");
      const id = randomUUID();
      await worker.store(id, success(id), { replyTo });
      expect(await inbox.waitFor(id, { timeout: 30 })).toMatchObject({ status: "SUCCESS" });
    } finally {
      await allowConfigure(true);
      await Promise.all([inbox.close(), worker.close()]);
    }
  });

  it("rpc backend with reconnectAttempts: 3: a wait fails with a CONNECTION error naming the limit", async () => {
    const logger = recordingLogger();
    const inbox = createRpcBackend({ url, ...RETRY, reconnectAttempts: 3, logger });
    try {
      await inbox.replyTo();
      const waiting = inbox.waitFor(randomUUID(), { timeout: 170 }).then(
        () => "resolved",
        (error: unknown) => error,
      );
      await closeAllAndRefuseDeclarations();
      const error = await waiting;
      expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
      expect(String(error)).toMatch(/failed 3 times in a row, the limit \(reconnectAttempts\)/);
      expect(has(logger, "error", "rpc backend stopped reading the reply queue")).toBe(true);
    } finally {
      await allowConfigure(true);
      await inbox.close();
    }
  });

  it("remote control: a broadcast subscription listens again once it can be declared; a broadcast sent then arrives", async () => {
    const logger = recordingLogger();
    const listener = createAmqpBroadcast({ url, ...RETRY, logger });
    const sender = createAmqpBroadcast({ url, ...RETRY });
    const exchange = { name: `faults.bc.${randomUUID()}`, type: "fanout" as const };
    const queue = { name: `faults.bcq.${randomUUID()}` };
    const got: unknown[] = [];
    try {
      await listener.subscribe(exchange, queue, "", (delivery) => got.push(delivery));
      await closeAllAndRefuseDeclarations();
      const again = `listen for broadcasts on "${queue.name}" again`;
      try {
        await until(() => has(logger, "warn", `${again}: failed; retrying`), 60_000, "a failure");
        await until(
          () => logger.lines.filter((l) => l.msg.includes(`${again}: failed`)).length >= 3,
          60_000,
          "three attempts",
        );
      } finally {
        await allowConfigure(true);
      }
      await until(() => has(logger, "info", `${again}: done again`), 60_000, "listening again");
      await sender.publish(exchange, "", message({ task: "faults.ping" }));
      await until(() => got.length === 1, 30_000, "the broadcast");
    } finally {
      await allowConfigure(true);
      await Promise.all([listener.close(), sender.close()]);
    }
  });
  it("remote control with reconnectAttempts: 3 keeps trying past them while the connection is up, logging an error once", async () => {
    const logger = recordingLogger();
    const settings = { url, reconnectInitialDelay: 0.05, reconnectMaxDelay: 0.5, logger };
    const listener = createAmqpBroadcast({ ...settings, reconnectAttempts: 3 });
    const sender = createAmqpBroadcast({ url, ...RETRY });
    const exchange = { name: `faults.bc.${randomUUID()}`, type: "fanout" as const };
    const queue = { name: `faults.bcq.${randomUUID()}` };
    const got: unknown[] = [];
    const again = `listen for broadcasts on "${queue.name}" again`;
    const failures = () => logger.lines.filter((l) => l.msg.includes(`${again}: failed`)).length;
    try {
      await listener.subscribe(exchange, queue, "", (delivery) => got.push(delivery));
      await closeAllAndRefuseDeclarations();
      try {
        await until(() => failures() >= 6, 60_000, "six failed attempts, past the three");
        expect(has(logger, "error", `${again}: failed 3 times in a row; still retrying`)).toBe(
          true,
        );
        expect(has(logger, "error", "stopped listening")).toBe(false);
      } finally {
        await allowConfigure(true);
      }
      await until(() => has(logger, "info", `${again}: done again`), 60_000, "listening again");
      await sender.publish(exchange, "", message({ task: "faults.ping" }));
      await until(() => got.length === 1, 30_000, "the broadcast");
    } finally {
      await allowConfigure(true);
      await Promise.all([listener.close(), sender.close()]);
    }
  });

  it("close() during a re-setup's backoff ends it: no timer of it is left running", async () => {
    const logger = recordingLogger();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    // A long backoff: the re-setup sleeps for seconds between attempts.
    const listener = createAmqpBroadcast({
      url,
      reconnectInitialDelay: 4,
      reconnectMaxDelay: 5,
      logger,
    });
    const exchange = { name: `faults.bc.${randomUUID()}`, type: "fanout" as const };
    const queue = { name: `faults.bcq.${randomUUID()}` };
    try {
      await listener.subscribe(exchange, queue, "", () => undefined);
      await closeAllAndRefuseDeclarations();
      const again = `listen for broadcasts on "${queue.name}" again`;
      await until(() => has(logger, "warn", `${again}: failed; retrying`), 60_000, "a failure");
      await listener.close();
      // Nothing else of this test runs a timer now: one left would be the backoff's.
      expect(timers(), "timers left after close()").toBe(0);
    } finally {
      await allowConfigure(true);
      await listener.close();
    }
  });
});
