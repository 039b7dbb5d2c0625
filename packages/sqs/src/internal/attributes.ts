/**
 * Message attributes the transport writes. kombu neither writes nor reads message attributes, so
 * Python workers ignore them; they travel with the message through a redrive.
 */
/** Epoch milliseconds before which the message must not be delivered (publish's `availableAt`). */
export const AVAILABLE_AT = "celery-ts.available-at";
/** On a dead letter: the reason given to `reject({ requeue: false, reason })`. */
export const DEAD_REASON = "celery-ts.dead-reason";
/** On a dead letter: the queue (celery-ts name) it was rejected from. */
export const DEAD_QUEUE = "celery-ts.dead-queue";
/** On a dead letter: when it was rejected, epoch milliseconds. */
export const DEAD_AT = "celery-ts.dead-at";

/** SQS counts attribute bytes toward the message size; a reason is a log line, not a document. */
export const MAX_REASON_LENGTH = 4_096;
