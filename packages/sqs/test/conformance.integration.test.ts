import { transportConformance } from "@celery-ts/testing";
import { vi } from "vitest";
import { createSqsTransport } from "../src/index.ts";
import { useFauxqs } from "./support/fauxqs.ts";

// Every HTTP round trip counts here: the many-consumers case moves 200 messages through SQS.
vi.setConfig({ testTimeout: 30_000 });

const VISIBILITY_SECONDS = 2;
const fauxqs = useFauxqs();

transportConformance("sqs (fauxqs)", {
  create: () =>
    createSqsTransport(
      fauxqs.options({ visibilityTimeoutSeconds: VISIBILITY_SECONDS, waitTimeSeconds: 1 }),
    ),
  // The suite's queue names are valid SQS names as they are (no prefix, nothing to translate).
  injectRaw: (queue, raw) => fauxqs.sendRaw(queue, raw),
  // The visibility timeout, and one long poll for the survivor to see the message.
  redeliveryWithinMs: VISIBILITY_SECONDS * 1000 + 1000,
});
