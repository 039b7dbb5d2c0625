import { isCeleryTsError, type Logger } from "@celery-ts/core";
import { backoffDelay } from "@celery-ts/core/driver";

export interface DeadLetterFailureSettings {
  logger: Logger;
  /** The dead-letter exchange, and the dead-letter queue of a queue: named in the advice. */
  exchange: string;
  queueOf(queue: string): string;
  /** Seconds: the first wait, and the longest (the transport's reconnect backoff). */
  initial: number;
  max: number;
}

/**
 * When a rejected message cannot be kept as a dead letter, the consumer hands it back to its
 * queue, as it must not be lost; but not at once, or its task would run and fail again in a hot
 * loop. This says how long to hold it first: growing with each failure of the queue, and the
 * longest wait from the start for a refusal that retrying does not heal (a permission, an
 * argument). The first failure of a queue is logged, with what to do; the next ones are not,
 * until one of the queue's dead letters is kept again.
 */
export class DeadLetterFailures {
  readonly #settings: DeadLetterFailureSettings;
  readonly #failures = new Map<string, number>();

  constructor(settings: DeadLetterFailureSettings) {
    this.#settings = settings;
  }

  /** Records a failure to keep a message of `queue`; returns how long to hold it (ms). */
  failed(queue: string, taskId: string | undefined, error: unknown): number {
    const { logger, exchange, queueOf, initial, max } = this.#settings;
    const count = (this.#failures.get(queue) ?? 0) + 1;
    this.#failures.set(queue, count);
    const lasting = !isCeleryTsError(error) || !error.retryable;
    const seconds = lasting ? max : Math.max(initial, backoffDelay(count, { initial, max }));
    if (count > 1) return seconds * 1000;
    const advice = lasting
      ? ` If RabbitMQ refused access, grant the user configure and write permission on the ` +
        `exchange "${exchange}" and the queue "${queueOf(queue)}" (rabbitmqctl set_permissions), ` +
        "or turn dead letters off (deadLetters: false, dead_letters=off in the broker URL, " +
        "--dead-letters off)."
      : "";
    logger.error(
      `amqp: cannot keep a rejected message of the queue "${queue}" (task ${taskId ?? "unknown"}) ` +
        `as a dead letter: ${error instanceof Error ? error.message : String(error)}. It is not ` +
        `dropped: it goes back to its queue after ${seconds} s, to be run again, and so do the ` +
        `next ones until dead letters can be kept (this is logged once for the queue).${advice}`,
      { queue, taskId, error: String(error) },
    );
    return seconds * 1000;
  }

  /** A dead letter of `queue` was kept: a later failure is logged again. */
  kept(queue: string): void {
    if (this.#failures.delete(queue)) {
      this.#settings.logger.info(`amqp: dead letters of the queue "${queue}" are kept again`, {
        queue,
      });
    }
  }
}
