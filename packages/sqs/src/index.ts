export { createSqsTransport } from "./sqs-transport.ts";
export type { PredefinedQueue, SqsTransportOptions } from "./sqs-transport.ts";
export { createTransportFromUrl } from "./url.ts";
