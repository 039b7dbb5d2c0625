import {
  MemoryBroker,
  createMemoryBackend,
  createMemoryTransport,
  type Broadcast,
  type Transport,
} from "@celery-ts/core";
import { expect, it } from "vitest";
import { createWorker } from "../src/index.ts";

/**
 * A memory transport whose remote-control broadcast answers late: its connect() waits for
 * `answer()`. Records whether every broadcast it handed out was closed.
 */
function lateBroadcast(inner: Transport) {
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  let asked!: () => void;
  const connecting = new Promise<void>((resolve) => (asked = resolve));
  const opened: { closed: boolean }[] = [];
  const transport: Transport = {
    ...inner,
    broadcast: (): Broadcast => {
      const real = inner.broadcast!();
      const record = { closed: false };
      opened.push(record);
      return {
        ...real,
        async connect() {
          asked();
          await answered;
          await real.connect();
        },
        async close() {
          record.closed = true;
          await real.close();
        },
      };
    },
  };
  return { transport, answer, connecting, opened };
}

it("stop() while start() waits for the broker's broadcast: both resolve and nothing start() opened is left open", async () => {
  const broker = new MemoryBroker();
  const late = lateBroadcast(createMemoryTransport({ broker }));
  const worker = createWorker({
    broker: late.transport,
    backend: createMemoryBackend(),
    tasks: [],
    heartbeat: true,
  });
  const starting = worker.start();
  await late.connecting;
  const stopping = worker.stop();
  // The broker answers once stop() has done all it can without start()'s help.
  await new Promise((resolve) => setImmediate(resolve));
  late.answer();
  await Promise.all([starting, stopping]);
  expect(late.opened.length).toBe(1);
  expect(
    late.opened.every((b) => b.closed),
    "the broadcast closed",
  ).toBe(true);
}, 10_000);
