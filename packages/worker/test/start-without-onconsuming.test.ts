import {
  MemoryBroker,
  createMemoryBackend,
  createMemoryTransport,
  defineTask,
  type Transport,
} from "@celery-ts/core";
import { createClient } from "@celery-ts/client";
import { expect, it } from "vitest";
import { createWorker } from "../src/index.ts";

/**
 * A transport written before `ConsumeOptions.onConsuming` existed: it never calls it, and its
 * capabilities do not say `reportsConsuming`.
 */
function olderTransport(inner: Transport): Transport {
  const { reportsConsuming: _, ...capabilities } = inner.capabilities;
  return {
    ...inner,
    capabilities,
    consume: (queues, onDelivery, { onConsuming: _unused, ...options }) =>
      inner.consume(queues, onDelivery, options),
  };
}

it("start() resolves with a transport that never calls onConsuming (no capabilities.reportsConsuming), and the worker runs tasks", async () => {
  const broker = new MemoryBroker();
  const backend = createMemoryBackend();
  const add = defineTask("older.add", (a: number, b: number) => a + b);
  const worker = createWorker({
    broker: olderTransport(createMemoryTransport({ broker })),
    backend,
    tasks: [add],
    heartbeat: false,
    remoteControl: false,
  });
  const client = createClient({ broker: createMemoryTransport({ broker }), backend });
  try {
    await worker.start();
    const result = await client.sendTask<number>("older.add", { args: [2, 3] });
    expect(await result.get({ timeout: 5 })).toBe(5);
  } finally {
    await worker.stop();
    await client.close();
  }
}, 10_000);
