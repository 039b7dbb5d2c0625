import { join } from "node:path";
import { decodeTaskMessage, isCeleryTsError, type ConnectionEvent } from "@celery-ts/core";
import { spawnCollecting, waitAbsenceWindow } from "@celery-ts/testing";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { internalsOf } from "../src/internal/registry.ts";
import {
  BROKER_URL,
  closeConnectionFromServer,
  rabbitAdmin,
  sleep,
  unique,
  until,
} from "./support/rabbit.ts";
import { message, transports } from "./support/transports.ts";

// Each server-side close goes through rabbitmqctl: several seconds each on a loaded machine.
vi.setConfig({ testTimeout: 120_000 });

const admin = rabbitAdmin();
const t = transports(admin, { reconnectInitialDelay: 0.05, reconnectMaxDelay: 0.5 });
afterEach(() => t.closeAll());
afterAll(() => admin.cleanup());

const localPortOf = (transport: object): number | undefined =>
  internalsOf(transport)?.manager.session?.localPort;

describe("a consumer that dies", () => {
  it("has its unacknowledged messages redelivered at once when its process is killed", async () => {
    const queue = unique("killed");
    admin.trackCeleryQueue(queue);
    const producer = t.connect();
    for (let i = 0; i < 5; i++) await producer.publish(message({ args: [i] }), { queue });
    const child = spawnCollecting(process.execPath, [
      join(import.meta.dirname, "support/consumer-process.ts"),
      BROKER_URL,
      queue,
      "5",
    ]);
    // A node process starting on a loaded machine: bounded, returning as soon as it prints.
    await child.waitForOutput("received 5", 60_000);
    expect(await admin.messageCount(queue)).toBe(0);
    await child.stop("SIGKILL");
    const survivor = t.consume(t.connect(), [queue]);
    // No lease to run out: RabbitMQ requeues them when it sees the socket close. The bound is
    // far below the only other way back, the broker's 30-minute consumer_timeout.
    const deliveries = await survivor.waitFor(5, 60_000);
    expect(deliveries.every((d) => d.redelivered)).toBe(true);
    expect(deliveries.map((d) => decodeTaskMessage(d.message!).args[0]).sort()).toEqual([
      0, 1, 2, 3, 4,
    ]);
  });
});

describe("a connection closed by the server", () => {
  it("resumes consuming on a new connection; the old deliveries come back redelivered", async () => {
    const queue = unique("reconnect");
    const producer = t.connect();
    const transport = t.connect();
    const consumer = t.consume(transport, [queue], 5);
    await producer.publish(message({ args: ["before"] }), { queue });
    const [before] = await consumer.waitFor(1);
    const port = localPortOf(transport);
    await closeConnectionFromServer(port);
    await until(
      () => localPortOf(transport) !== undefined && localPortOf(transport) !== port,
      10_000,
      "a new connection",
    );
    // The message in hand came on the closed channel: settling it says it is coming back.
    const error = await before!.ack().catch((e: unknown) => e);
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect((error as Error).message).toMatch(/will deliver it again/);
    await producer.publish(message({ args: ["after"] }), { queue });
    const deliveries = await consumer.waitFor(3, 10_000);
    const byArg = new Map(
      deliveries.slice(1).map((d) => [decodeTaskMessage(d.message!).args[0], d]),
    );
    expect(byArg.get("before")?.redelivered).toBe(true);
    expect(byArg.get("after")?.redelivered).toBe(false);
    for (const delivery of byArg.values()) await delivery.ack();
    await sleep(100);
    expect(await admin.messageCount(queue)).toBe(0);
  });

  it("publishes again on a new connection; a publish that hits the outage fails retryable", async () => {
    const queue = unique("reconnect-publish");
    admin.trackCeleryQueue(queue);
    const producer = t.connect();
    await producer.publish(message(), { queue });
    await closeConnectionFromServer(localPortOf(producer));
    // Either it already saw the close and reconnects, or it fails in a way the client retries.
    let sent = 1;
    for (let attempt = 0; attempt < 20 && sent < 2; attempt++) {
      try {
        await producer.publish(message(), { queue });
        sent++;
      } catch (error) {
        expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
        expect(error).toMatchObject({ retryable: true });
        await sleep(50);
      }
    }
    expect(sent).toBe(2);
    expect(await admin.messageCount(queue)).toBe(2);
  });

  it("reports the loss and the recovery to onConnectionEvent (the worker's metrics count them)", async () => {
    const queue = unique("reconnect-events");
    const transport = t.connect();
    const events: ConnectionEvent[] = [];
    const stop = transport.onConnectionEvent!((event) => events.push(event));
    t.consume(transport, [queue]);
    await until(() => localPortOf(transport) !== undefined, 10_000, "a connection");
    expect(events).toEqual([]);
    await closeConnectionFromServer(localPortOf(transport));
    await until(() => events.length === 2, 10_000, "the loss and the recovery");
    expect(events).toEqual([
      { type: "lost", role: "connection" },
      { type: "recovered", role: "connection" },
    ]);
    stop();
  });

  it("says truthfully what a publish-only transport does after a loss", async () => {
    const queue = unique("reconnect-publish-only");
    admin.trackCeleryQueue(queue);
    const lines: { level: string; msg: string; meta: unknown }[] = [];
    const at = (level: string) => (msg: string, meta?: unknown) =>
      void lines.push({ level, msg, meta });
    const logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
    const producer = t.connect({ logger });
    await producer.publish(message(), { queue });
    await closeConnectionFromServer(localPortOf(producer));
    await until(() => lines.some((l) => l.level === "warn"), 10_000, "the loss to be logged");
    // Nothing reconnects until it is used again: no backoff, and no downtime to report.
    expect(lines.find((l) => l.level === "warn")?.msg).toMatch(
      /lost its connection to RabbitMQ; it will reconnect on next use$/,
    );
    await until(
      () =>
        producer.publish(message(), { queue }).then(
          () => true,
          () => false,
        ),
      10_000,
      "a publish on a new connection",
    );
    const back = lines.find((l) => /reconnected to RabbitMQ/.test(l.msg));
    expect(back?.level).toBe("info");
    expect(back?.meta).not.toHaveProperty("downSeconds");
  });

  it("keeps prefetch and consumers across several reconnects", async () => {
    const queue = unique("reconnect-many");
    const producer = t.connect();
    const transport = t.connect();
    const consumer = t.consume(transport, [queue], 2);
    for (let round = 0; round < 3; round++) {
      await until(() => localPortOf(transport) !== undefined, 10_000, "a connection");
      const port = localPortOf(transport);
      await closeConnectionFromServer(port);
      await until(
        () => localPortOf(transport) !== undefined && localPortOf(transport) !== port,
        10_000,
        "a new connection",
      );
    }
    for (let i = 0; i < 5; i++) await producer.publish(message({ args: [i] }), { queue });
    await consumer.waitFor(2, 10_000);
    await waitAbsenceWindow(transport); // a declared window: no third while two are held
    expect(consumer.received).toHaveLength(2);
    await consumer.received[0]!.ack();
    await consumer.waitFor(3);
  });
});
