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
