import { createMemoryBackend } from "@celery-ts/core";
import { workerConformance } from "@celery-ts/testing";
import { createWorker } from "@celery-ts/worker";
import { afterAll } from "vitest";
import { createAmqpTransport, type AmqpTransportOptions } from "../src/index.ts";
import { declareQueue, resolveQueue } from "../src/internal/topology.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";
import { tracked } from "./support/tracked.ts";

const admin = rabbitAdmin();
afterAll(() => admin.cleanup());

// Dead letters on, so that the suite's dead-letter tests run; results in memory (one process).
const settings = {
  url: BROKER_URL,
  delayPrefix: unique("celery_ts.delay.worker-suite"),
  deadLetter: { exchange: unique("worker-suite-dlx") },
} satisfies AmqpTransportOptions;
admin.trackDelayTopology(settings.delayPrefix);
admin.trackExchange(settings.deadLetter.exchange);

workerConformance("amqp", {
  createWorker,
  createTransport: () => tracked(admin, createAmqpTransport(settings)),
  createBackend: () => createMemoryBackend(),
  async injectRaw(queue, raw) {
    admin.trackCeleryQueue(queue);
    const spec = resolveQueue(queue, {
      queues: {},
      maxPriority: undefined,
      queueType: "classic",
      deadLetter: undefined, // declareArguments is off: the queue has no dead-letter arguments
    });
    await admin.withChannel(async (channel) => {
      await declareQueue(channel, spec, queue);
      channel.sendToQueue(queue, Buffer.from(raw, "latin1"), {
        contentType: "application/octet-stream",
        contentEncoding: "binary",
        deliveryMode: 2,
      });
    });
  },
});
