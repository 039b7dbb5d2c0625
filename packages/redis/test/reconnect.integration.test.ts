import { randomUUID } from "node:crypto";
import {
  createTaskMessage,
  defineTask,
  encodeTaskMessage,
  isCeleryTsError,
  type Delivery,
  type ResultBackend,
  type Transport,
} from "@celery-ts/core";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
// Not yet devDependencies of this package: imported from the workspace by path.
import { createClient } from "@celery-ts/client";
import { createWorker } from "@celery-ts/worker";
import { createRedisBackend, createRedisTransport } from "../src/index.ts";
import { captureLogger } from "@celery-ts/testing";
import { PrivateRedis, startSentinel } from "./support/private-redis.ts";
import { sleep, until } from "./support/redis.ts";

const message = (n = 0) => encodeTaskMessage(createTaskMessage({ task: "reconnect.n", args: [n] }));

describe("a Redis that restarts", () => {
  let server: PrivateRedis;
  const open: (Transport | ResultBackend)[] = [];
  const controllers: AbortController[] = [];
  beforeAll(async () => {
    server = await PrivateRedis.start();
  });
  afterEach(async () => {
    controllers.splice(0).forEach((controller) => controller.abort());
    if (!server.running) await server.restart(); // a test that failed may have left it down
    await Promise.all(open.splice(0).map((connection) => connection.close()));
  });
  afterAll(async () => {
    await server.stop();
  });
  const consume = (transport: Transport, queue: string) => {
    const received: Delivery[] = [];
    const controller = new AbortController();
    controllers.push(controller);
    const done = transport.consume(
      [queue],
      (d) => {
        received.push(d);
        d.ack().catch(() => undefined);
      },
      { prefetch: 10, signal: controller.signal },
    );
    return { received, done };
  };
  const transport = (options: Parameters<typeof createRedisTransport>[0] & object = {}) => {
    const t = createRedisTransport({ connection: server.url, ...options });
    open.push(t);
    return t;
  };

  it("keeps consuming after a restart: the consumer reconnects with backoff and logs it; a publish meanwhile fails fast", async () => {
    const logger = captureLogger();
    const queue = `restart-${randomUUID()}`;
    const consumer = transport({ logger });
    // Longer than the reconnect backoff (3 s at most), so a publish after the restart gets through.
    const producer = transport({ offlineTimeout: 3.5 });
    const received = consume(consumer, queue);
    await producer.publish(message(1), { queue });
    await until(() => received.received.length === 1);

    await server.kill();
    const started = Date.now();
    const error = await producer.publish(message(2), { queue }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: true });
    expect((error as Error).message).toContain(`127.0.0.1:${server.port}/0`);
    await sleep(500);

    await server.restart();
    await producer.publish(message(3), { queue });
    await until(() => received.received.length === 2, 10_000, "a delivery after the restart");
    expect(received.received.map((d) => d.message?.headers.id)).not.toContain(undefined);
    // Once for the transport's connections together (command, consumer, wake-up), not per connection.
    await until(
      () => /redis: reconnected to .* after [\d.]+ s/.test(logger.text("info")),
      5_000,
      "the reconnect log",
    );
    const outage = logger.lines.filter((l) => /^redis: (lost|reconnected)/.test(l.message));
    expect(outage.map((l) => [l.level, l.message.replace(/[\d.]+ s$/, "N s")])).toEqual([
      ["warn", `redis: lost the connection to 127.0.0.1:${server.port}/0; retrying with backoff`],
      ["info", `redis: reconnected to 127.0.0.1:${server.port}/0 after N s`],
    ]);
  }, 30_000);

  it("reconnectAttempts (?reconnect_attempts=): consuming ends with a clear error after so many failed attempts in a row; by default it never gives up", async () => {
    const limitedLog = captureLogger();
    const unlimitedLog = captureLogger();
    const [a, b] = [`give-up-${randomUUID()}`, `keep-trying-${randomUUID()}`];
    const limited = transport({
      connection: `${server.url}?reconnect_attempts=3`,
      logger: limitedLog,
    });
    const unlimited = transport({ logger: unlimitedLog });
    const gaveUp = consume(limited, a);
    const keptTrying = consume(unlimited, b);
    const outcome = gaveUp.done.then(
      () => "resolved",
      (error: unknown) => error,
    );
    await limited.publish(message(1), { queue: a });
    await unlimited.publish(message(1), { queue: b });
    await until(() => gaveUp.received.length === 1 && keptTrying.received.length === 1);

    await server.kill();
    const error = await outcome;
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: false });
    expect((error as Error).message).toMatch(
      new RegExp(
        `gave up reconnecting to Redis at 127\\.0\\.0\\.1:${server.port}/0 after 3 failed attempts in a row \\(reconnectAttempts\\)`,
      ),
    );
    expect(limitedLog.lines.filter((l) => /gave up reconnecting/.test(l.message))).toHaveLength(1);
    expect(limitedLog.text("warn")).toMatch(/at most 3 attempts in a row/);
    // The default: still trying, well past three failed attempts.
    const attempts = () =>
      unlimitedLog.lines.filter((l) => l.message.startsWith("redis: reconnecting the consumer"));
    await until(() => attempts().length > 6, 15_000, "more than six reconnect attempts");
    await server.restart();
    await unlimited.publish(message(2), { queue: b });
    await until(() => keptTrying.received.length === 2, 10_000, "a delivery after the restart");
    // A publish after giving up tries once more, and gets through.
    await limited.publish(message(2), { queue: a });
  }, 40_000);

  it("lets a publish made during an outage succeed once Redis is back within offlineTimeout", async () => {
    const queue = `outage-${randomUUID()}`;
    const producer = transport({ offlineTimeout: 8 });
    const received = consume(transport(), queue);
    await producer.connect();
    await server.kill();
    const publishing = producer.publish(message(), { queue });
    publishing.catch(() => undefined); // awaited below
    await sleep(700);
    await server.restart();
    await publishing;
    await until(() => received.received.length === 1, 10_000, "the delivery");
  }, 30_000);

  it("wakes result waiters after a restart, on a result stored once it is back", async () => {
    const waiting = createRedisBackend({ connection: server.url });
    const writer = createRedisBackend({ connection: server.url });
    open.push(waiting, writer);
    const taskId = randomUUID();
    const result = waiting.waitFor(taskId, { timeout: 20 });
    await sleep(200);
    await server.kill();
    await sleep(300);
    await server.restart();
    // Within the offline timeout, the writer's store waits for its reconnection.
    await writer.store(taskId, {
      status: "SUCCESS",
      result: 42,
      traceback: null,
      children: [],
      date_done: null,
      task_id: taskId,
    });
    expect((await result).result).toBe(42);
  }, 30_000);

  it("reconnectAttempts on a result backend: a pending wait rejects with the give-up error, the outage log is cleared, and the next wait reconnects", async () => {
    const logger = captureLogger();
    const backend = createRedisBackend({
      connection: `${server.url}?reconnect_attempts=3`,
      logger,
    });
    const writer = createRedisBackend({ connection: server.url });
    open.push(backend, writer);
    const meta = (taskId: string) => ({
      status: "SUCCESS" as const,
      result: 7,
      traceback: null,
      children: [],
      date_done: null,
      task_id: taskId,
    });
    const first = randomUUID();
    await backend.connect();
    const pending = backend.waitFor(first, { timeout: 120 }).then(
      () => "resolved",
      (error: unknown) => error,
    );
    const admin = new Redis(server.url);
    const subscribers = async () => {
      const reply = (await admin.pubsub("NUMSUB", `celery-task-meta-${first}`)) as [string, number];
      return Number(reply[1]);
    };
    await until(async () => (await subscribers()) === 1, 5_000, "the wait subscribed");
    admin.disconnect();
    await server.kill();
    const error = await pending;
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect((error as Error).message).toMatch(
      /gave up reconnecting to Redis at .* after 3 failed attempts in a row \(reconnectAttempts\)/,
    );
    await server.restart();
    // The command connection is up again (it may have been between two attempts), the results
    // connection is not used: the first outage is over only if the latter was forgotten when it
    // gave up. A second outage is then reported again.
    expect(await backend.get(first)).toBeUndefined();
    const lost = () => logger.lines.filter((l) => /^redis: lost the connection/.test(l.message));
    expect(lost()).toHaveLength(1);
    await server.kill();
    await until(() => lost().length === 2, 10_000, "the second outage reported");
    await server.restart();
    // The next wait connects again and hears its result.
    const second = randomUUID();
    const waiting = backend.waitFor(second, { timeout: 10 });
    await writer.store(second, meta(second));
    expect((await waiting).result).toBe(7);
  }, 40_000);

  it("a celery-ts worker goes on working through a restart; a delay() during it rejects with a clear error", async () => {
    const logger = captureLogger();
    const queue = `worker-${randomUUID()}`;
    const broker = transport({ logger });
    const backend = createRedisBackend({ connection: server.url });
    open.push(backend);
    const add = defineTask("reconnect.add", (a: number, b: number) => a + b, { queue });
    const worker = createWorker({ broker, backend, tasks: [add], queues: [queue], logger });
    await worker.start();
    const client = createClient({
      broker: transport({ offlineTimeout: 0.3 }),
      backend: createRedisBackend({ connection: server.url }),
      publishRetry: { maxRetries: 2, delay: 0.1 },
    });
    try {
      const handle = client.task(add);
      expect(await (await handle.delay(1, 2)).get({ timeout: 10 })).toBe(3);

      await server.kill();
      const started = Date.now();
      const error = await handle.delay(2, 3).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
      expect((error as Error).message).toMatch(
        new RegExp(
          `could not send task reconnect\\.add\\[.*\\] to queue "${queue}" on the redis broker after 3 attempts: .*127\\.0\\.0\\.1:${server.port}/0`,
        ),
      );

      await server.restart();
      // The client reconnects on its own backoff (jittered, up to 3 s): send once it is back.
      const deadline = Date.now() + 10_000;
      let sent = await handle.delay(3, 4).catch((e: unknown) => e);
      while (isCeleryTsError(sent, "CONNECTION") && Date.now() < deadline) {
        sent = await handle.delay(3, 4).catch((e: unknown) => e);
      }
      expect(await (sent as Awaited<ReturnType<typeof handle.delay>>).get({ timeout: 15 })).toBe(7);
      expect(logger.text("error")).not.toMatch(/consuming stopped/);
    } finally {
      await worker.stop();
      await client.close();
    }
  }, 40_000);
});

describe("credentials", () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await PrivateRedis.start({ args: ["--requirepass", "s3cret"] });
    const admin = new Redis({ port: server.port, password: "s3cret" });
    await admin.call("ACL", "SETUSER", "worker", "on", ">w0rker", "~*", "&*", "+@all");

    await admin.quit();
  });
  afterAll(async () => {
    await server.stop();
  });

  it.each([
    ["a wrong password", ":nope@"],
    ["no password", ""],
    ["an unknown user", "ghost:s3cret@"],
  ])(
    "rejects %s at once with a CONFIG error that says to check the credentials",
    async (_case, auth) => {
      const transport = createRedisTransport({
        connection: `redis://${auth}127.0.0.1:${server.port}/0`,
        offlineTimeout: 5,
      });
      const started = Date.now();
      const error = await transport.connect().catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(isCeleryTsError(error, "CONFIG")).toBe(true);
      expect((error as Error).message).toMatch(/check the username and password/);
      expect((error as Error).message).not.toContain("s3cret");
      await transport.close();
    },
  );

  it("connects with a password, or an ACL user and password, to the database the URL names", async () => {
    const transport = createRedisTransport(`redis://worker:w0rker@127.0.0.1:${server.port}/3`);
    const backend = createRedisBackend(`redis://:s3cret@127.0.0.1:${server.port}/3`);
    const queue = `acl-${randomUUID()}`;
    await transport.publish(message(), { queue });
    await backend.store("t", {
      status: "SUCCESS",
      result: 1,
      traceback: null,
      children: [],
      date_done: null,
      task_id: "t",
    });
    const inspect = new Redis({ port: server.port, password: "s3cret", db: 3 });
    expect(await inspect.llen(queue)).toBe(1);
    expect(await inspect.exists("celery-task-meta-t")).toBe(1);
    await inspect.quit();
    await Promise.all([transport.close(), backend.close()]);
  });
});

describe("without client tracking", () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await PrivateRedis.start();
    const admin = new Redis({ port: server.port });
    await admin.call("ACL", "SETUSER", "nocli", "on", ">n0cli", "~*", "&*", "+@all", "-client");
    await admin.quit();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("falls back to polling, says so once, and still delivers", async () => {
    const logger = captureLogger();
    const url = `redis://nocli:n0cli@127.0.0.1:${server.port}/0`;
    const consumer = createRedisTransport({ connection: url, logger });
    const producer = createRedisTransport(url);
    const queue = `poll-${randomUUID()}`;
    const received: Delivery[] = [];
    const controller = new AbortController();
    const done = consumer.consume([queue], (d) => received.push(d), {
      prefetch: 10,
      signal: controller.signal,
    });
    await until(() => logger.text("warn").includes("client tracking is unavailable"), 5_000);
    for (let i = 0; i < 3; i++) {
      const sent = Date.now();
      await producer.publish(message(i), { queue });
      await until(() => received.length === i + 1, 2_000);
      // The fallback poll is 100 ms.
      expect(Date.now() - sent).toBeLessThan(500);
    }
    expect(
      logger.lines.filter((line) => line.message.includes("tracking is unavailable")),
    ).toHaveLength(1);
    await Promise.all(received.map((d) => d.ack()));
    controller.abort();
    await done;
    await Promise.all([consumer.close(), producer.close()]);
  });
});

describe("Sentinel", () => {
  let master: PrivateRedis;
  let sentinel: PrivateRedis;
  beforeAll(async () => {
    master = await PrivateRedis.start();
    sentinel = await startSentinel(master, "celerymaster");
  });
  afterAll(async () => {
    await sentinel.stop();
    await master.stop();
  });

  it("finds the master through redis+sentinel:// and works on it", async () => {
    const url = `redis+sentinel://127.0.0.1:${sentinel.port}/2?master_name=celerymaster`;
    const transport = createRedisTransport(url);
    const backend = createRedisBackend(url);
    const queue = `sentinel-${randomUUID()}`;
    const received: Delivery[] = [];
    const controller = new AbortController();
    const done = transport.consume([queue], (d) => received.push(d), {
      prefetch: 1,
      signal: controller.signal,
    });
    await transport.publish(message(), { queue });
    await until(() => received.length === 1);
    await received[0]?.ack();
    const waiting = backend.waitFor("s", { timeout: 5 });
    await backend.store("s", {
      status: "SUCCESS",
      result: "via sentinel",
      traceback: null,
      children: [],
      date_done: null,
      task_id: "s",
    });
    expect((await waiting).result).toBe("via sentinel");
    const inspect = new Redis({ port: master.port, db: 2 });
    expect(await inspect.exists("celery-task-meta-s")).toBe(1);
    await inspect.quit();
    controller.abort();
    await done;
    await Promise.all([transport.close(), backend.close()]);
  });
});
