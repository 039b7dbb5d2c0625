/**
 * `@celery-ts/core/driver`: the kit that transport drivers are built on. A queue-backed driver
 * supplies its primitives (take, ack, requeue, dead-letter, extend a lease) to
 * `createConsumerKit()` and gets `consume()` with settle-once bookkeeping, lease renewal, flow
 * control, decoding, hand-back and backoff. The helpers below are the one copy every driver uses:
 * errors, durations in seconds, backoff, the network errors worth retrying, `sleep`, and the
 * registry that makes a driver's URL schemes resolve. See docs/writing-a-transport.md.
 *
 * @packageDocumentation
 */
export { checkFenceToken, createPublishRegistry } from "./driver/atomic-publish.ts";
export type { PublishRegistry } from "./driver/atomic-publish.ts";
export { backoffDelay } from "./driver/backoff.ts";
export { bindingMatches, deliverBroadcast } from "./driver/broadcast.ts";
export type { BackoffOptions } from "./driver/backoff.ts";
export { createConsumerKit } from "./driver/consumer-kit.ts";
export type { ConsumerKit, ConsumerKitOptions } from "./driver/consumer-kit.ts";
export { durationOption, toMs } from "./driver/durations.ts";
export { Ledger } from "./driver/ledger.ts";
export type { LedgerOptions } from "./driver/ledger.ts";
export type { DurationBounds } from "./driver/durations.ts";
export { createConnectionEvents } from "./driver/connection-events.ts";
export type { ConnectionEvents } from "./driver/connection-events.ts";
export { closedError, configError, connectionError } from "./driver/errors.ts";
export { NETWORK_ERROR_CODES, networkErrorCode } from "./driver/network-errors.ts";
export type {
  DriverPrimitives,
  MessageSource,
  TakeBatch,
  AckToWrite,
  TakeRequest,
  TakenMessage,
} from "./driver/primitives.ts";
export { registerDriver, registeredDriver } from "./driver/registry.ts";
export type { DriverModule, DriverRegistration, DriverUrlOptions } from "./driver/registry.ts";
export { sleep } from "./driver/sleep.ts";
export { ENVELOPE_HEAD, ENVELOPE_MIDDLE, envelopeParts } from "./envelope.ts";
export {
  DEFAULT_DEAD_LETTER_LIMITS,
  DEFAULT_MAX_MESSAGE_BYTES,
  deliveryLimits,
  notKeptPayload,
  deadLetterCountLimit,
  notKeptReason,
  oversize,
  oversizeReason,
  storedDeadLetter,
  takeDeliveryLimitParameters,
  taskIdOf,
  TrimSchedule,
  withDeadLetters,
} from "./driver/dead-letters.ts";
export type {
  DeadLetterAccess,
  DeadLetterLimits,
  DeliveryLimitOptions,
  DeliveryLimits,
} from "./driver/dead-letters.ts";
