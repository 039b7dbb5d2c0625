import type { Transport } from "@celery-ts/core";
import { transportConformance } from "@celery-ts/testing";
import { afterAll, vi } from "vitest";
import { createAmqpTransport, type AmqpTransportOptions } from "../src/index.ts";
import { declareQueue, resolveQueue } from "../src/internal/topology.ts";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";

// Four consumers on a shared 2-core machine, 200 confirmed publishes: more than vitest's 5 s.
vi.setConfig({ testTimeout: 30_000 });

const admin = rabbitAdmin();
afterAll(() => admin.cleanup());

/** Every queue a suite's transport touches is recorded, to be deleted after the file. */
function tracked(transport: Transport): Transport {
  const publish = transport.publish.bind(transport);
  const consume = transport.consume.bind(transport);
  const purge = transport.purge.bind(transport);
  return Object.assign(transport, {
    publish: (
      message: Parameters<Transport["publish"]>[0],
      options: Parameters<Transport["publish"]>[1],
    ) => {
      admin.trackCeleryQueue(options.queue);
      return publish(message, options);
    },
    consume: (
      queues: readonly string[],
      ...rest: [Parameters<Transport["consume"]>[1], Parameters<Transport["consume"]>[2]]
    ) => {
      for (const queue of queues) admin.trackCeleryQueue(queue);
      return consume(queues, ...rest);
    },
    purge: (queue: string) => {
      admin.trackCeleryQueue(queue);
      return purge(queue);
    },
  });
}

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
  if (settings.deadLetter) admin.trackExchange(settings.deadLetter.exchange);
  transportConformance(`amqp (${label})`, {
    create: () => tracked(createAmqpTransport(settings)),
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
    redeliveryWithinMs: 0,
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
