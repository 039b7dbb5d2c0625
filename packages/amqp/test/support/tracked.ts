import type { Transport } from "@celery-ts/core";
import type { RabbitAdmin } from "./rabbit.ts";

/** Every queue a suite's transport touches is recorded, to be deleted after the file. */
export function tracked(admin: RabbitAdmin, transport: Transport): Transport {
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
