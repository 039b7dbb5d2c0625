import { registerDriver } from "@celery-ts/core/driver";
import { createBackendFromUrl, createBroadcastFromUrl, createTransportFromUrl } from "./url.ts";

export { createAmqpTransport } from "./amqp-transport.ts";
export type {
  AmqpDeadLetterOptions,
  AmqpQueueOptions,
  AmqpTransportOptions,
  ExchangeType,
  QueueType,
} from "./amqp-transport.ts";
export { createRpcBackend } from "./rpc-backend.ts";
export type { RpcBackend, RpcBackendOptions } from "./rpc-backend.ts";
export type { ConnectionOptions as AmqpConnectionOptions } from "./internal/options.ts";
export { createAmqpBroadcast } from "./fanout.ts";
export type { AmqpBroadcastOptions } from "./fanout.ts";
export { createBackendFromUrl, createBroadcastFromUrl, createTransportFromUrl };

// Importing the package makes its URL schemes resolve to it.
registerDriver({
  pkg: "@celery-ts/amqp",
  schemes: ["amqp", "amqps", "rpc"],
  createTransportFromUrl,
  createBroadcastFromUrl,
  createBackendFromUrl,
});
