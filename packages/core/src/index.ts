export { decodeEnvelope, encodeEnvelope } from "./envelope.ts";
export type { DecodedEnvelope, EnvelopeRoute } from "./envelope.ts";
export { CeleryTsError, TaskFailedError, isCeleryTsError } from "./errors.ts";
export type { CeleryTsErrorOptions, ErrorCode, TaskFailure } from "./errors.ts";
export { decodeJson, encodeJson } from "./json.ts";
export { silentLogger } from "./logger.ts";
export type { Logger } from "./logger.ts";
export { createMemoryBackend } from "./memory-backend.ts";
export type { MemoryBackendOptions } from "./memory-backend.ts";
export { MemoryBroker, createMemoryTransport } from "./memory-transport.ts";
export type { MemoryTransportOptions } from "./memory-transport.ts";
export { celeryNow, exceptionInfo, failureFromMeta } from "./result-backend.ts";
export type {
  ExceptionInfo,
  ResultBackend,
  ResultMeta,
  StoreOptions,
  WaitOptions,
} from "./result-backend.ts";
export { createResultWaiters } from "./result-waiters.ts";
export type { ResultWaiters, ResultWaitersOptions, WaitRequest } from "./result-waiters.ts";
export { DEFAULT_RETRY_POLICY, retryDelaySeconds } from "./retry-policy.ts";
export type { RetryPolicy } from "./retry-policy.ts";
export { TaskState, isReadyState } from "./states.ts";
export { currentTask, findCurrentTask, runWithTaskContext } from "./task-context.ts";
export type { TaskContext } from "./task-context.ts";
export {
  JSON_CONTENT_TYPE,
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  formatCeleryDate,
  parseCeleryDate,
} from "./task-message.ts";
export type {
  DecodeOptions,
  Embed,
  MessageProperties,
  Signature,
  TaskHeaders,
  TaskMessage,
  TaskMessageInput,
  WireMessage,
} from "./task-message.ts";
export {
  IgnoreTask,
  RejectTask,
  RetryTask,
  UnrecoverableError,
  asTaskSignal,
} from "./task-signals.ts";
export type { AnyTaskSignal, RetryOptions } from "./task-signals.ts";
export { declareTask, defineTask } from "./task.ts";
export type {
  AnyTaskDefinition,
  ErrorClass,
  TaskArgs,
  TaskDeclaration,
  TaskDefinition,
  TaskOptions,
  TaskResult,
} from "./task.ts";
export type {
  ConsumeOptions,
  DeadLetter,
  Delivery,
  PublishOptions,
  Transport,
  TransportCapabilities,
} from "./transport.ts";
export { resolveBackend, resolveTransport } from "./url.ts";
export type { DriverModule } from "./url.ts";
