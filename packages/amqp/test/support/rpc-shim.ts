import type { ResultBackend, ResultMeta, StoreOptions, Transport } from "@celery-ts/core";
import type { RpcBackend } from "../../src/index.ts";

/**
 * Stand-ins, for these tests only, for the two changes the rpc:// backend needs outside this
 * package (proposed in the README, "What celery-ts needs to change"):
 *
 * - Client: send the backend's reply queue as `reply_to`, declared before the task is published
 *   (core: `ResultBackend.replyTo?(): Promise<string>`; the client awaits it before publishing).
 * - Worker: pass the message's `reply_to` and `correlation_id` to `store()` (core: two optional
 *   fields of `StoreOptions`).
 */

/** The client side: every message published through it carries the backend's reply queue. */
export function clientShim(transport: Transport, backend: RpcBackend): Transport {
  return {
    ...transport,
    async publish(message, options) {
      const replyTo = await backend.replyTo();
      return transport.publish(
        { ...message, properties: { ...message.properties, reply_to: replyTo } },
        options,
      );
    },
  };
}

interface Reply {
  replyTo?: string;
  correlationId?: string;
}

/**
 * The worker side: the transport remembers each delivered task's `reply_to` and `correlation_id`
 * by task id, and the backend's `store()` passes them on, as the worker would.
 */
export function workerShim(
  transport: Transport,
  backend: RpcBackend,
): { transport: Transport; backend: ResultBackend } {
  const replies = new Map<string, Reply>();
  return {
    transport: {
      ...transport,
      consume(queues, onDelivery, options) {
        return transport.consume(
          queues,
          (delivery) => {
            const properties = delivery.message?.properties ?? {};
            const id = delivery.message?.headers.id ?? properties.correlation_id;
            if (typeof id === "string") {
              const reply: Reply = {};
              if (typeof properties.reply_to === "string") reply.replyTo = properties.reply_to;
              if (typeof properties.correlation_id === "string") {
                reply.correlationId = properties.correlation_id;
              }
              replies.set(id, reply);
            }
            onDelivery(delivery);
          },
          options,
        );
      },
    },
    backend: {
      ...backend,
      store(taskId: string, meta: ResultMeta, options: StoreOptions = {}) {
        return backend.store(taskId, meta, { ...options, ...replies.get(taskId) });
      },
    },
  };
}
