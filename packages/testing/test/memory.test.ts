import { MemoryBroker, createMemoryBackend, createMemoryTransport } from "@celery-ts/core";
import { backendConformance, transportConformance } from "../src/index.ts";

// The in-memory implementations define the expected behaviour: they run the suites first.
const broker = new MemoryBroker();
transportConformance("memory", {
  create: () => createMemoryTransport({ broker }),
  injectRaw: async (queue, raw) => broker.push(queue, raw),
  redeliveryWithinMs: 0,
});

const backend = createMemoryBackend();
// One in-process store: "another connection" is the same object, as it is for one process.
backendConformance("memory", { create: () => ({ ...backend, close: async () => {} }) });
