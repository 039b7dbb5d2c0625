import {
  MemoryBroker,
  MemoryStoreSpace,
  createMemoryBackend,
  createMemoryStore,
  createMemoryTransport,
} from "@celery-ts/core";
import { backendConformance, storeConformance, transportConformance } from "../src/index.ts";

// The in-memory implementations define the expected behaviour: they run the suites first.
const broker = new MemoryBroker();
transportConformance("memory", {
  create: (options) => createMemoryTransport({ broker, ...options }),
  injectRaw: async (queue, raw) => broker.push(queue, raw),
});

const backend = createMemoryBackend();
// One in-process store: "another connection" is the same object, as it is for one process.
backendConformance("memory", { create: () => ({ ...backend, close: async () => {} }) });

// Handles on one space behave as connections to one server.
const space = new MemoryStoreSpace();
storeConformance("memory", { create: () => createMemoryStore({ space }) });
