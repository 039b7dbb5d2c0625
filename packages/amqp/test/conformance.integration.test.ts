import { transportConformance } from "@celery-ts/testing";
import { afterAll, vi } from "vitest";
import { createAmqpTransport, type AmqpTransportOptions } from "../src/index.ts";
import { declareQueue, resolveQueue } from "../src/internal/topology.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";
import { tracked } from "./support/tracked.ts";

// Four consumers on a shared 2-core machine, 200 confirmed publishes: more than vitest's 5 s.
vi.setConfig({ testTimeout: 30_000 });

const admin = rabbitAdmin();
// One deletion per queue and exchange the suite made: bounded, with room for a loaded machine.
afterAll(() => admin.cleanup(), 120_000);

/**
 * The suite's malformed message: the text as the body's bytes, sent as binary (as a pickle
 * producer does). On AMQP a JSON body that does not parse still arrives as a message (there is
 * no envelope to break: the frame is the envelope), and the worker's decoding rejects it; what
 * the transport itself cannot read is a body it cannot carry as text. See the README.
 */
function harness(label: string, options: AmqpTransportOptions): void {
  const settings = {
    url: BROKER_URL,
    delayPrefix: unique(`celery_ts.delay.${label}`),
    ...options,
  } satisfies AmqpTransportOptions;
  admin.trackDelayTopology(settings.delayPrefix);
  if (settings.deadLetter?.exchange) admin.trackExchange(settings.deadLetter.exchange);
  else admin.trackSharedExchange("celery_ts.dead");
  transportConformance(`amqp (${label})`, {
    create: (limits) => tracked(admin, createAmqpTransport({ ...settings, ...limits })),
    // The broker pushes deliveries: there is no poll at all.
    createWakeOnly: () => tracked(admin, createAmqpTransport(settings)),
    async injectRaw(queue, raw) {
      admin.trackCeleryQueue(queue);
      const spec = resolveQueue(queue, {
        queues: {},
        maxPriority: settings.maxPriority,
        queueType: settings.queueType ?? "classic",
        deadLetter: undefined,
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
    deviations: {
      27: "delayed messages wait in the delay topology's queues, which purge(queue) does not reach",
    },
    createUnreachable: () => createAmqpTransport({ ...settings, url: "amqp://127.0.0.1:1" }),
  });
}

harness("kombu defaults", {});
// Per-consumer QoS: what RabbitMQ 4.3+ (no global QoS by default) and quorum queues get.
harness("priorities, dead letters, per-consumer QoS", {
  globalQos: false,
  maxPriority: 10,
  deadLetter: { exchange: unique("conformance-dlx") },
});
harness("quorum queues", {
  queueType: "quorum",
  delayQueueType: "quorum",
  deadLetter: { exchange: unique("conformance-dlx-q") },
});
