export { createSignals, signals } from "./app-signals.ts";
export type {
  SignalListener,
  SignalName,
  SignalPayloads,
  Signals,
  TaskSignalInfo,
} from "./app-signals.ts";
export { topicMatches } from "./broadcast.ts";
export type {
  Broadcast,
  BroadcastCapable,
  BroadcastDelivery,
  BroadcastQueue,
  BroadcastSubscription,
  ExchangeRef,
} from "./broadcast.ts";
export {
  CELERY_EXCEPTION_MODULES,
  exceptionArgs,
  maxRetriesExceededError,
  notRegisteredError,
  withExceptionArgs,
} from "./celery-exceptions.ts";
export { storeIncrementBy, storeTtlMs } from "./coordination-store.ts";
export type {
  AtomicPublisher,
  CompareAndSetOptions,
  CoordinationStore,
  Fence,
  IncrementOptions,
  RecordedWrite,
  StoreEntry,
  TtlOptions,
} from "./coordination-store.ts";
export { decodeEnvelope, encodeEnvelope } from "./envelope.ts";
export {
  EVENT_EXCHANGE,
  SOFTWARE_INFO,
  anonNodename,
  createEventPublisher,
  loadAverage,
  receiveEvents,
  utcOffsetHours,
} from "./events.ts";
export type { CeleryEvent, EventPublisher, EventPublisherOptions } from "./events.ts";
export type { DecodedEnvelope, EnvelopeRoute } from "./envelope.ts";
export { CeleryTsError, TaskFailedError, isCeleryTsError } from "./errors.ts";
export type { CeleryTsErrorOptions, ErrorCode, TaskFailure } from "./errors.ts";
export { reprValue as pythonRepr } from "./internal/py-repr.ts";
export { decodeJson, encodeJson } from "./json.ts";
export { silentLogger } from "./logger.ts";
export type { Logger } from "./logger.ts";
export { createMemoryBackend } from "./memory-backend.ts";
export type { MemoryBackendOptions } from "./memory-backend.ts";
export { MemoryStoreSpace, createMemoryStore } from "./memory-store.ts";
export type { MemoryStoreOptions } from "./memory-store.ts";
export { MemoryExchanges, createMemoryBroadcast } from "./memory-broadcast.ts";
export { MemoryBroker, createMemoryTransport } from "./memory-transport.ts";
export type { MemoryTransportOptions } from "./memory-transport.ts";
export { celeryNow, exceptionInfo, failureFromMeta } from "./result-backend.ts";
export type {
  ExceptionInfo,
  PreparedStore,
  ResultBackend,
  ResultMeta,
  StoreOptions,
  WaitOptions,
} from "./result-backend.ts";
export { createResultWaiters, decodeStoredResult, resultTimeoutError } from "./result-waiters.ts";
export type { ResultWaiters, ResultWaitersOptions, WaitRequest } from "./result-waiters.ts";
export {
  DEFAULT_MAILBOX_NAMESPACE,
  adjustClock,
  callControl,
  castControl,
  clockValue,
  forwardClock,
  isAddressedTo,
  jsonWireMessage,
  mailboxExchange,
  mailboxQueue,
  parseControlRequest,
  parseJsonBody,
  replyExchange,
} from "./pidbox.ts";
export type { ControlCallOptions, ControlReply, ControlRequest } from "./pidbox.ts";
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
export type {
  Rate,
  RateLimit,
  RateLimitGroup,
  RateLimitOptions,
  UniqueOptions,
} from "./task-flow-options.ts";
export type { TaskHookInfo, TaskHooks } from "./task-hooks.ts";
export {
  TaskArgumentsError,
  bindArguments,
  callArguments,
  checkUndeclaredCall,
  parseParams,
  pythonFunctionName,
  taskCallArguments,
  taskParams,
} from "./task-params.ts";
export type {
  BoundArguments,
  CallableTask,
  ParamList,
  ParamSpec,
  ParamStyle,
} from "./task-params.ts";
export { declareTask, defineTask } from "./task.ts";
export type {
  AnyTaskDefinition,
  ErrorClass,
  KwargsOf,
  TaskArgs,
  TaskKwargs,
  TaskDeclaration,
  TaskDefinition,
  TaskOptions,
  TaskResult,
  TypedTaskOptions,
  WireValue,
} from "./task.ts";
export { publishAll, settleBatch, unsentOf } from "./transport.ts";
export type {
  BatchFailure,
  ConnectionEvent,
  ConsumeOptions,
  PublishItem,
  DeadLetter,
  DeadLetterSelection,
  Delivery,
  PublishOptions,
  Transport,
  TransportCapabilities,
} from "./transport.ts";
export {
  DEFAULT_DEAD_LETTER_LIMITS,
  DEFAULT_MAX_MESSAGE_BYTES,
  deadLetterMethods,
  taskIdOf,
} from "./driver/dead-letters.ts";
export type {
  DeadLetterLimits,
  DeadLetterMethods,
  DeliveryLimitOptions,
} from "./driver/dead-letters.ts";
export { resolveBackend, resolveBroadcast, resolveStore, resolveTransport } from "./url.ts";
export type { DriverModule } from "./url.ts";
export { traceRun, traceSend } from "./tracing.ts";
export { prepareCanvas } from "./canvas/apply-signature.ts";
export { unhonourableSignature } from "./canvas/signature-options.ts";
export type { CanvasCall, CanvasSender, PreparedCanvas } from "./canvas/apply-signature.ts";
export type { ChordCounter, ChordPart, ChordProgress, GroupStore } from "./canvas/chord-counter.ts";
export { createChordCounterInMemory } from "./canvas/memory-chords.ts";
export { chordSize, freeze, freezeChain, rootOf, unrollGroup } from "./canvas/freeze.ts";
export { fromResultTuple, groupNode, taskNode, toResultTuple } from "./canvas/result-tuple.ts";
export type { ResultNode, ResultTuple } from "./canvas/result-tuple.ts";
export { messageFromSignature } from "./canvas/signature-message.ts";
export type { MessageDefaults, PreparedMessage } from "./canvas/signature-message.ts";
export {
  CANVAS_TASK,
  asSignature,
  cloneSignature,
  createSignature,
  signatureList,
} from "./canvas/signature.ts";
