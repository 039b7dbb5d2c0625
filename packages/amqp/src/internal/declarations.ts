import type { Logger } from "@celery-ts/core";
import { isCeleryTsError } from "@celery-ts/core";
import type { DeadLetterLimits } from "@celery-ts/core/driver";
import type { QueueType } from "../amqp-transport.ts";
import { deadQueueArguments, type DeadLetterTarget } from "./dead-letters.ts";
import {
  bindDelayExchangeTarget,
  bindDelayTarget,
  declareDelayTopology,
  type DelayNames,
} from "./delay.ts";
import { isNotFound } from "./errors.ts";
import type { Session } from "./session.ts";
import {
  declarationKey,
  declareDeadLetterQueue,
  declareExchange,
  declareQueue,
  type QueueSpec,
} from "./topology.ts";

export interface DeclarationSettings {
  deadLetter: { exchange: string; queueSuffix: string; limits: DeadLetterLimits } | undefined;
  names: DelayNames;
  delayQueueType: QueueType;
  logger: Logger;
}

/** What the transport declares, once per session (the session caches each declaration). */
export class Declarations {
  readonly #settings: DeclarationSettings;
  /** Where rejected messages go; undefined without the `deadLetter` option. */
  readonly deadLetters: DeadLetterTarget | undefined;
  /** Dead-letter queues found declared with other bounds, warned about once each. */
  readonly #otherwiseDeclared = new Set<string>();

  constructor(settings: DeclarationSettings) {
    this.#settings = settings;
    const dl = settings.deadLetter;
    this.deadLetters = dl && {
      exchange: dl.exchange,
      limits: dl.limits,
      queueOf: (queue) => `${queue}${dl.queueSuffix}`,
      declare: (session, queue) => this.#deadLetterQueue(session, dl.exchange, queue),
    };
  }

  /**
   * Declares the queue (or a broadcast queue's exchange) after its dead-letter queue: RabbitMQ
   * drops what it dead-letters to an exchange that is not there yet.
   */
  async queue(session: Session, spec: QueueSpec, actualName = spec.name): Promise<void> {
    if (this.deadLetters && !spec.broadcast) await this.deadLetters.declare(session, spec.name);
    if (spec.broadcast && actualName === spec.name) {
      return session.declare(
        declarationKey("exchange", spec.name, spec.exchange, spec.exchangeType),
        `declare the exchange "${spec.exchange}"`,
        (channel) => declareExchange(channel, spec.exchange, spec.exchangeType),
      );
    }
    return session.declare(
      declarationKey("queue", spec.name, actualName, spec),
      `declare the queue "${actualName}"`,
      (channel) => declareQueue(channel, spec, actualName),
    );
  }

  /** The delay topology, and the binding that brings due messages to `spec`'s queue. */
  async delayTarget(session: Session, spec: QueueSpec): Promise<void> {
    const { names, delayQueueType } = this.#settings;
    await session.declare(
      declarationKey("delay", names.delivery, delayQueueType),
      `declare the delay exchanges and queues "${names.delivery}"`,
      (channel) => declareDelayTopology(channel, names, delayQueueType),
    );
    await session.declare(
      declarationKey("delay-target", spec.name, names.delivery),
      `bind the queue "${spec.name}" to the delay exchange "${names.delivery}"`,
      (channel) =>
        spec.broadcast
          ? bindDelayExchangeTarget(channel, names, spec.exchange, spec.name)
          : bindDelayTarget(channel, names, spec.name),
    );
  }

  /**
   * Declares `<queue>.dead` with its bounds. One that exists with other arguments (declared by an
   * older celery-ts, or with other bounds) is used as it is, with a warning: RabbitMQ refuses to
   * declare a queue again with other arguments, and deleting it would lose its dead letters.
   */
  async #deadLetterQueue(session: Session, exchange: string, queue: string): Promise<void> {
    const deadQueue = this.deadLetters!.queueOf(queue);
    const args = deadQueueArguments(this.deadLetters!.limits);
    const declareWith = (given: Record<string, unknown> | undefined) =>
      session.declare(
        declarationKey("dead-letter", queue, exchange, deadQueue, given === undefined),
        `declare the dead-letter queue "${deadQueue}"`,
        (channel) => declareDeadLetterQueue(channel, exchange, deadQueue, queue, given),
      );
    if (this.#otherwiseDeclared.has(deadQueue)) {
      try {
        return await declareWith(undefined);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        // Deleted since (as the warning suggests): declared again below, with these bounds.
        this.#otherwiseDeclared.delete(deadQueue);
      }
    }
    try {
      await declareWith(args);
    } catch (error) {
      if (
        !isCeleryTsError(error, "CONFIG") ||
        !/already exists with a different/.test(error.message)
      ) {
        throw error;
      }
      this.#otherwiseDeclared.add(deadQueue);
      this.#settings.logger.warn(
        `amqp: the dead-letter queue "${deadQueue}" exists with other arguments; it is used as ` +
          "it is, with its own bounds (delete it, once empty, to have it declared with these)",
        { queue: deadQueue, wanted: args, error: error.message },
      );
      await declareWith(undefined);
    }
  }
}
