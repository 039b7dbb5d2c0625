import type { Delivery, Transport } from "@celery-ts/core";

export interface Collector {
  readonly received: Delivery[];
  /** Waits until `count` deliveries arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<Delivery[]>;
  stop(): Promise<void>;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Consumes `queues` into a list; `onDelivery` runs for each delivery too. */
export function collect(
  transport: Transport,
  queues: string[],
  prefetch = 10,
  onDelivery?: (delivery: Delivery) => void,
): Collector {
  const received: Delivery[] = [];
  const controller = new AbortController();
  const done = transport.consume(
    queues,
    (delivery) => {
      received.push(delivery);
      onDelivery?.(delivery);
    },
    { prefetch, signal: controller.signal },
  );
  return {
    received,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) {
          throw new Error(
            `expected ${count} deliveries in ${timeoutMs} ms, got ${received.length}`,
          );
        }
        await sleep(20);
      }
      return received.slice(0, count);
    },
    async stop() {
      controller.abort();
      await done;
    },
  };
}
