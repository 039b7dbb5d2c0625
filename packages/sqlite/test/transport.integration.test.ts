import { randomUUID } from "node:crypto";
import { join } from "node:path";
import {
  createTaskMessage,
  encodeEnvelope,
  encodeTaskMessage,
  isCeleryTsError,
  type Delivery,
  type Transport,
} from "@celery-ts/core";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteTransport, type SqliteTransportOptions } from "../src/index.ts";
import { withRawDb } from "./support/raw-db.ts";
import { useTempDir } from "./support/temp-dir.ts";
import { sleep } from "@celery-ts/core/driver";

const message = (n = 0) => encodeTaskMessage(createTaskMessage({ task: "sqlite.n", args: [n] }));

describe("sqlite transport", () => {
  const dir = useTempDir();
  const open: Transport[] = [];
  const controllers: AbortController[] = [];
  const connect = (options: Omit<SqliteTransportOptions, "path"> = {}): Transport => {
    const transport = createSqliteTransport({
      path: join(dir(), "broker.db"),
      pollInterval: 0.02,
      ...options,
    });
    open.push(transport);
    return transport;
  };
  /** Starts consuming `queue`; the deliveries array fills as they arrive. */
  const consume = (transport: Transport, queue: string, prefetch = 10) => {
    const received: Delivery[] = [];
    const controller = new AbortController();
    controllers.push(controller);
    const done = transport.consume([queue], (d) => received.push(d), {
      prefetch,
      signal: controller.signal,
    });
    return { received, done, stop: () => controller.abort() };
  };
  const until = async (condition: () => boolean, timeoutMs = 5_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error("timed out");
      await sleep(10);
    }
  };
  const rows = (queue: string) =>
    withRawDb(join(dir(), "broker.db"), (db) =>
      db.all("SELECT state, delivered, dead_reason FROM celery_ts_messages WHERE queue = ?", queue),
    );

  afterEach(async () => {
    controllers.splice(0).forEach((controller) => controller.abort());
    await Promise.all(open.splice(0).map((transport) => transport.close()));
  });

  it("goes on after an ack the database refuses: the slot is freed and the message comes back after its lease", async () => {
    // The measured stall: one failed ack left a concurrency-1 consumer holding its only slot.
    const visibilityTimeout = 0.5;
    const transport = connect({ visibilityTimeout });
    const queue = randomUUID();
    await transport.publish(message(1), { queue });
    await transport.publish(message(2), { queue });
    const c = consume(transport, queue, 1);
    await until(() => c.received.length === 1);
    // A real refusal by SQLite: the DELETE of an ack fails while this trigger exists.
    withRawDb(join(dir(), "broker.db"), (db) =>
      db.run(
        `CREATE TRIGGER refuse_ack BEFORE DELETE ON celery_ts_messages
         BEGIN SELECT RAISE(ABORT, 'ack refused by the test'); END`,
      ),
    );
    await expect(c.received[0]!.ack()).rejects.toThrow(/ack refused by the test/);
    withRawDb(join(dir(), "broker.db"), (db) => db.run("DROP TRIGGER refuse_ack"));
    await until(() => c.received.length === 2);
    await c.received[1]!.ack();
    // No longer renewed: the first message comes back once its lease runs out.
    await until(() => c.received.length === 3, (visibilityTimeout + 5) * 1000);
    expect(c.received[2]!.redelivered).toBe(true);
    expect(c.received[2]!.message?.body).toBe(c.received[0]!.message?.body);
    await c.received[2]!.ack();
    expect(rows(queue)).toEqual([]);
  });

  it("renews the lease of a long task, so it is not redelivered while its consumer lives", async () => {
    const leaseMs = 300;
    const visibilityTimeout = leaseMs / 1000;
    const [holder, rival] = [connect({ visibilityTimeout }), connect({ visibilityTimeout })];
    const queue = randomUUID();
    await holder.publish(message(), { queue });
    const held = consume(holder, queue);
    await until(() => held.received.length === 1);
    const waiting = consume(rival, queue);
    await sleep(4 * leaseMs);
    expect(waiting.received).toHaveLength(0);
    await held.received[0]?.ack();
    await sleep(2 * leaseMs);
    expect(waiting.received).toHaveLength(0);
    expect(rows(queue)).toEqual([]);
  });

  it("hands outstanding messages back at once on a graceful close", async () => {
    const [leaving, staying] = [
      connect({ visibilityTimeout: 60 }),
      connect({ visibilityTimeout: 60 }),
    ];
    const queue = randomUUID();
    await leaving.publish(message(), { queue });
    const held = consume(leaving, queue);
    await until(() => held.received.length === 1);
    await leaving.close();
    const took = consume(staying, queue);
    await until(() => took.received.length === 1, 1_000);
    expect(took.received[0]?.redelivered).toBe(true);
  });

  it("leaves outstanding messages leased on a forced close, until the lease runs out", async () => {
    const leaseMs = 600;
    const visibilityTimeout = leaseMs / 1000;
    const [crashing, staying] = [connect({ visibilityTimeout }), connect({ visibilityTimeout })];
    const queue = randomUUID();
    await crashing.publish(message(), { queue });
    const first = consume(crashing, queue);
    await until(() => first.received.length === 1);
    const closedAt = Date.now();
    await crashing.close({ force: true });
    const took = consume(staying, queue);
    await until(() => took.received.length === 1);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(leaseMs - 50);
    expect(took.received[0]?.redelivered).toBe(true);
  });

  it("rejects ack, reject and publish after close with a CLOSED error", async () => {
    const transport = connect();
    const queue = randomUUID();
    await transport.publish(message(), { queue });
    const consumer = consume(transport, queue);
    await until(() => consumer.received.length === 1);
    await transport.close();
    await consumer.done;
    const delivery = consumer.received[0];
    for (const attempt of [
      delivery?.ack(),
      delivery?.reject({ requeue: true }),
      transport.publish(message(), { queue }),
      transport.purge(queue),
    ]) {
      const error = await attempt?.catch((e: unknown) => e);
      expect(isCeleryTsError(error, "CLOSED")).toBe(true);
    }
  });

  it("makes the ack of a lease lost to another consumer a no-op", async () => {
    const [slow, fast] = [connect(), connect()];
    const queue = randomUUID();
    await slow.publish(message(), { queue });
    const stale = consume(slow, queue);
    await until(() => stale.received.length === 1);
    stale.stop();
    // As if the slow process had stalled past its lease.
    withRawDb(join(dir(), "broker.db"), (db) =>
      db.run("UPDATE celery_ts_messages SET lease_until = 0"),
    );
    const fresh = consume(fast, queue);
    await until(() => fresh.received.length === 1);
    expect(fresh.received[0]?.redelivered).toBe(true);
    await stale.received[0]?.ack();
    expect(rows(queue)).toEqual([{ state: "reserved", delivered: 2, dead_reason: null }]);
    await fresh.received[0]?.ack();
    expect(rows(queue)).toEqual([]);
  });

  it("keeps dead letters with their reason, oldest first, through purges and reconnects", async () => {
    const transport = connect();
    const queue = randomUUID();
    for (let i = 0; i < 3; i++) await transport.publish(message(i), { queue });
    await transport.publish(message(9), { queue, availableAt: Date.now() + 60_000 });
    const consumer = consume(transport, queue, 1);
    for (let i = 0; i < 3; i++) {
      await until(() => consumer.received.length === i + 1);
      await consumer.received[i]?.reject({ requeue: false, reason: `reason ${i}` });
    }
    expect(await transport.purge(queue)).toBe(1);
    const other = connect();
    const dead = await other.deadLetters?.(queue);
    expect(dead?.map((d) => d.reason)).toEqual(["reason 0", "reason 1", "reason 2"]);
    expect(
      dead?.every(
        (d) =>
          d.queue === queue && JSON.parse(d.raw).properties.delivery_info.routing_key === queue,
      ),
    ).toBe(true);
    expect(await other.deadLetters?.(queue, { limit: 2 })).toHaveLength(2);
  });

  it("wakes an idle consumer on a write from another process, without waiting for the poll", async () => {
    const transport = connect({ pollInterval: 60 });
    const queue = randomUUID();
    const consumer = consume(transport, queue);
    await sleep(100);
    const raw = encodeEnvelope(message(), {
      exchange: "",
      routingKey: queue,
      priority: 0,
      deliveryTag: "t",
    });
    // A plain connection does not go through this process's wake-up: only the WAL watch sees it.
    withRawDb(join(dir(), "broker.db"), (db) =>
      db.run("INSERT INTO celery_ts_messages (queue, payload) VALUES (?, ?)", queue, raw),
    );
    await until(() => consumer.received.length === 1, 2_000);
  });

  it("ends consume() with the error of a throwing callback and hands back what it did not see", async () => {
    const [failing, other] = [connect(), connect()];
    const queue = randomUUID();
    for (let i = 0; i < 3; i++) await failing.publish(message(i), { queue });
    const controller = new AbortController();
    controllers.push(controller);
    const done = failing.consume(
      [queue],
      () => {
        throw new Error("callback bug");
      },
      { prefetch: 3, signal: controller.signal },
    );
    await expect(done).rejects.toThrow("callback bug");
    const rest = consume(other, queue);
    await until(() => rest.received.length === 2, 1_000);
  });
});
