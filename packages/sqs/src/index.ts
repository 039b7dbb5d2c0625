import { registerDriver } from "@celery-ts/core/driver";
import { createTransportFromUrl } from "./url.ts";

export { createSqsTransport } from "./sqs-transport.ts";
export type { PredefinedQueue, SqsTransportOptions } from "./sqs-transport.ts";
export { createTransportFromUrl };

// Importing the package makes its URL schemes resolve to it.
registerDriver({ pkg: "@celery-ts/sqs", schemes: ["sqs"], createTransportFromUrl });
