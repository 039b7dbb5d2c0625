// The tasks of the quickstart. A worker runs them (`celery-ts worker --app src/tasks.ts`); the
// producer only needs their declarations and types.
import { currentTask, defineTask } from "@celery-ts/core";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Adds two numbers, slowly enough to watch. */
export const add = defineTask("quickstart.add", async (a: number, b: number) => {
  await sleep(20 + Math.random() * 80);
  return a + b;
});

export class GatewayBusyError extends Error {
  override name = "GatewayBusyError";
}

/** Charges a card through a "gateway" that is busy on the first attempts: retried with backoff. */
export const charge = defineTask(
  "quickstart.charge",
  async (orderId: number, busyAttempts: number) => {
    await sleep(30);
    const { retries } = currentTask();
    if (retries < busyAttempts) throw new GatewayBusyError(`gateway busy for order ${orderId}`);
    return { orderId, attempts: retries + 1 };
  },
  { autoRetryFor: [GatewayBusyError], retry: { maxRetries: 3, delay: 0.2, maxDelay: 1 } },
);

/** Parses a price; fails on bad input, and the failure comes back to the producer. */
export const parsePrice = defineTask("quickstart.parse_price", (text: string) => {
  const value = Number(text);
  if (!Number.isFinite(value)) throw new RangeError(`"${text}" is not a price`);
  return Math.round(value * 100);
});
