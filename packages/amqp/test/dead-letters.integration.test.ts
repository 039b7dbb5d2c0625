import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { silentLogger } from "@celery-ts/core";
import { waitAbsenceWindow } from "@celery-ts/testing";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { BROKER_URL, rabbitAdmin, unique, VHOST } from "./support/rabbit.ts";
import { message, transports } from "./support/transports.ts";

vi.setConfig({ testTimeout: 30_000 });

const admin = rabbitAdmin();
const t = transports(admin);
afterEach(() => t.closeAll());
afterAll(() => admin.cleanup());

const rabbitmqctl = (...args: string[]) =>
  promisify(execFile)("rabbitmqctl", args, { timeout: 30_000 });

describe("replaying dead letters", () => {
  it("returns when a replayed letter is dead-lettered again, leaving it there once", async () => {
    const dlx = unique("dlx-again");
    const exchange = unique("again-exchange");
    const queue = unique("again");
    admin.trackExchange(dlx, exchange);
    admin.trackCeleryQueue(queue);
    // The queue is reached through a topic exchange of its own, to which its dead-letter queue is
    // bound too: a replayed letter is back among the dead letters as soon as RabbitMQ confirms it,
    // as a task that fails again would be, only without waiting for a worker.
    const transport = t.connect({
      deadLetter: { exchange: dlx },
      queues: { [queue]: { exchange, exchangeType: "topic" } },
    });
    const sent = message({ args: ["fails again"] });
    await transport.publish(sent, { queue });
    const consumer = t.consume(transport, [queue], 1);
    const [delivery] = await consumer.waitFor(1);
    await delivery!.reject({ requeue: false, reason: "failed" });
    consumer.stop();
    await consumer.done;
    await admin.withChannel((channel) => channel.bindQueue(`${queue}.dead`, exchange, queue));

    expect(await transport.replayDeadLetters!(queue)).toBe(1);
    const dead = await transport.deadLetters!(queue);
    expect(dead.map((letter) => letter.taskId)).toEqual([sent.headers.id]);
    expect(await admin.messageCount(queue)).toBe(1);
  });
});

describe("when a dead letter cannot be kept", () => {
  it("declares a deleted dead-letter queue again, with its bounds, even one found otherwise declared", async () => {
    const dlx = unique("dlx-deleted");
    const queue = unique("dead-deleted");
    admin.trackExchange(dlx);
    admin.trackCeleryQueue(queue);
    // An older celery-ts declared the dead-letter queue without bounds: it is used as it is...
    await admin.withChannel((channel) => channel.assertQueue(`${queue}.dead`, { durable: true }));
    const transport = t.connect({ deadLetter: { exchange: dlx }, logger: silentLogger });
    const second = message({ args: ["second"] });
    await transport.publish(message({ args: ["first"] }), { queue });
    await transport.publish(second, { queue });
    const consumer = t.consume(transport, [queue], 2);
    const [first, next] = await consumer.waitFor(2);
    await first!.reject({ requeue: false, reason: "failed" });
    // ...until the user deletes it, as the warning says: the next one is declared with bounds.
    await admin.withChannel((channel) => channel.deleteQueue(`${queue}.dead`));
    await next!.reject({ requeue: false, reason: "failed" });
    const dead = await transport.deadLetters!(queue);
    expect(dead.map((letter) => letter.taskId)).toEqual([second.headers.id]);
    const error = await admin
      .withChannel((channel) => channel.assertQueue(`${queue}.dead`, { durable: true }))
      .catch((caught: unknown) => caught);
    expect(String(error)).toMatch(/PRECONDITION_FAILED - inequivalent arg 'x-m/);
  });

  it("hands a message back after a wait, not at once, and says once per queue what to do", async () => {
    const user = unique("celery-ts-amqpfix");
    const dlx = unique("dlx-refused");
    const queue = unique("dead-refused");
    admin.trackExchange(dlx);
    admin.trackCeleryQueue(queue);
    // A user who may declare and bind everything, but not publish to the dead-letter exchange.
    await rabbitmqctl("add_user", user, "secret");
    try {
      await rabbitmqctl("set_permissions", "-p", VHOST, user, ".*", "^(?!dlx-refused-).*$", ".*");
      const errors: string[] = [];
      const logger = { ...silentLogger, error: (text: string) => void errors.push(text) };
      const url = BROKER_URL.replace(/\/\/[^@/]*@/, `//${user}:secret@`);
      const transport = t.connect({
        url,
        deadLetter: { exchange: dlx },
        logger,
        reconnectMaxDelay: 3,
      });
      const sent = [message({ args: [1] }), message({ args: [2] })];
      for (const one of sent) await transport.publish(one, { queue });
      const consumer = t.consume(transport, [queue], 2);
      const rejects = (await consumer.waitFor(2)).map((delivery) =>
        delivery.reject({ requeue: false, reason: "failed" }).then(
          () => "kept",
          (error: unknown) => String(error),
        ),
      );
      await waitAbsenceWindow(transport);
      expect(consumer.received).toHaveLength(2);
      for (const outcome of await Promise.all(rejects)) expect(outcome).toMatch(/access refused/);
      // Not dropped: both come back, to be run again.
      const back = (await consumer.waitFor(4, 15_000)).slice(2);
      expect(back.every((delivery) => delivery.redelivered)).toBe(true);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(`task ${sent[0]!.headers.id as string}`);
      expect(errors[0]).toMatch(/grant the user configure and write permission/);
      expect(errors[0]).toContain(`"${queue}.dead"`);
    } finally {
      await t.closeAll();
      await rabbitmqctl("delete_user", user);
    }
  }, 90_000); // rabbitmqctl takes seconds per call
});
