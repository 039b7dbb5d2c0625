import { createMemoryBackend } from "@celery-ts/core";
import { workerConformance } from "@celery-ts/testing";
import { createWorker } from "@celery-ts/worker";
import { createSqsTransport } from "../src/index.ts";
import { useFauxqs } from "./support/fauxqs.ts";

const fauxqs = useFauxqs();

// Results in memory (one process): SQS has no result backend.
workerConformance("sqs (fauxqs)", {
  createWorker,
  createTransport: () => createSqsTransport(fauxqs.options({ visibilityTimeout: 2, waitTime: 1 })),
  createBackend: () => createMemoryBackend(),
  injectRaw: (queue, raw) => fauxqs.sendRaw(queue, raw),
});
