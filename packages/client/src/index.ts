export type { AsyncResult, GetOptions } from "./async-result.ts";
export { DEFAULT_PUBLISH_RETRY, createClient } from "./client.ts";
export type { Client, ClientOptions } from "./client.ts";
export { DEFAULT_QUEUE } from "./send-options.ts";
export type { SendOptions, SendTaskOptions } from "./send-options.ts";
export type { TaskHandle } from "./task-handle.ts";
