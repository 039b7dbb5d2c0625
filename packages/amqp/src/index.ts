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
export { createBackendFromUrl, createTransportFromUrl } from "./url.ts";
