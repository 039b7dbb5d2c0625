import {
  createTaskMessage,
  encodeTaskMessage,
  type Delivery,
  type TaskMessageInput,
  type Transport,
  type WireMessage,
} from "@celery-ts/core";
import { createAmqpTransport, type AmqpTransportOptions } from "../../src/index.ts";
import { BROKER_URL, until, type RabbitAdmin } from "./rabbit.ts";

export const message = (input: Partial<TaskMessageInput> = {}): WireMessage =>
  encodeTaskMessage(createTaskMessage({ task: "amqp.test", ...input }));

const PROBE = "amqp.test.probe";
const isProbe = (delivery: Delivery): boolean => delivery.message?.headers.task === PROBE;

/**
 * Waits until each consumer's own queue of a broadcast exchange is bound: publishes a probe every
 * 100 ms until every consumer has received one (bounded), instead of sleeping and hoping. Then
 * `firstReal` skips (and acks) the probes.
 */
export async function untilBroadcastBound(
  producer: Transport,
  name: string,
  consumers: readonly { received: Delivery[] }[],
  timeoutMs = 15_000,
): Promise<void> {
  let last = 0;
  await until(
    async () => {
      if (consumers.every((c) => c.received.some(isProbe))) return true;
      if (Date.now() - last >= 100) {
        last = Date.now();
        await producer.publish(message({ task: PROBE }), { queue: name });
      }
      return false;
    },
    timeoutMs,
    "every broadcast consumer's queue to be bound",
  );
}

/** The first delivery that is not a probe of {@link untilBroadcastBound}; probes are acked. */
export async function firstReal(
  consumer: { received: Delivery[] },
  timeoutMs = 10_000,
): Promise<Delivery> {
  await until(
    () => consumer.received.some((d) => !isProbe(d)),
    timeoutMs,
    "a delivery other than the probes",
  );
  for (const probe of consumer.received.filter(isProbe)) await probe.ack();
  return consumer.received.find((d) => !isProbe(d))!;
}

/** Opens transports for one test file and closes them after each test. */
export function transports(admin: RabbitAdmin, defaults: AmqpTransportOptions = {}) {
  const open: Transport[] = [];
  const controllers: AbortController[] = [];
  return {
    connect(options: AmqpTransportOptions = {}): Transport {
      const transport = createAmqpTransport({ url: BROKER_URL, ...defaults, ...options });
      open.push(transport);
      return transport;
    },
    /** Starts consuming; `received` fills as deliveries arrive. */
    consume(transport: Transport, queues: string[], prefetch = 10) {
      for (const queue of queues) admin.trackCeleryQueue(queue);
      const received: Delivery[] = [];
      const controller = new AbortController();
      controllers.push(controller);
      const done = transport.consume(queues, (delivery) => received.push(delivery), {
        prefetch,
        signal: controller.signal,
      });
      return {
        received,
        done,
        stop: () => controller.abort(),
        waitFor: async (count: number, timeoutMs = 5_000) => {
          await until(() => received.length >= count, timeoutMs, `${count} deliveries`);
          return received.slice(0, count);
        },
      };
    },
    async closeAll() {
      controllers.splice(0).forEach((controller) => controller.abort());
      await Promise.all(open.splice(0).map((transport) => transport.close()));
    },
  };
}
