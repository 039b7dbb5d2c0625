import { transportConformance } from "@celery-ts/testing";
import { createSqsTransport } from "../src/index.ts";
import { useFauxqs } from "./support/fauxqs.ts";

const VISIBILITY_SECONDS = 2;
const fauxqs = useFauxqs();

transportConformance("sqs (fauxqs)", {
  create: (limits) =>
    createSqsTransport({
      ...fauxqs.options({ visibilityTimeout: VISIBILITY_SECONDS, waitTime: 1 }),
      ...limits,
    }),
  // The suite's queue names are valid SQS names as they are (no prefix, nothing to translate).
  injectRaw: (queue, raw) => fauxqs.sendRaw(queue, raw),
  deviations: {
    27: "SQS's PurgeQueue deletes in-flight messages too; the purge test's outstanding message is lost",
    43: "SQS cannot drop the oldest messages of a queue: dead letters are bounded by age (the dead-letter queue's MessageRetentionPeriod) and SQS's own message size, not by count or bytes",
  },
  // A port nothing listens on, and no retries.
  createUnreachable: () =>
    createSqsTransport(fauxqs.options({ endpoint: "http://127.0.0.1:1", maxAttempts: 1 })),
});
