import {
  createTaskMessage,
  findCurrentTask,
  type PublishOptions,
  type RetryPolicy,
  type TaskMessage,
  type TaskOptions,
  type UniqueOptions,
} from "@celery-ts/core";

import { clientError } from "./internal/errors.ts";

/** Celery's default queue: where tasks go when neither the call nor the declaration names one. */
export const DEFAULT_QUEUE = "celery";

/**
 * Options for one send (`applyAsync(args, options)`, `sendTask(name, options)`). Units follow
 * Celery: durations are seconds; `eta` and `expires` also take a `Date`.
 */
export interface SendOptions {
  /** The task id, e.g. to send idempotently or to know the id in advance. @default a random UUID */
  taskId?: string;
  /** Seconds from now before the task may run. Not together with `eta`. @default 0 (run at once) */
  countdown?: number;
  /** The earliest time the task may run. Not together with `countdown`. @default none (run at once) */
  eta?: Date;
  /**
   * Seconds from now (a number) or a moment (a `Date`) after which a task that has not started is
   * REVOKED instead of run.
   * @default the declaration's `expires`, else never
   */
  expires?: number | Date;
  /**
   * Priority 0-9. Which end is served first depends on the broker (Redis: 0, RabbitMQ: 9), as
   * in Celery.
   * @default the declaration's `priority`, else none (the broker's default)
   */
  priority?: number;
  /** The queue to send to. @default the declaration's `queue`, else "celery" */
  queue?: string;
  /** Keyword arguments, for tasks that take them (usually Python tasks). @default {} */
  kwargs?: Record<string, unknown>;
  /** Extra message headers, sent after Celery's own (they can override them). @default {} */
  headers?: Record<string, unknown>;
  /** Ask the worker not to store a result. @default the declaration's `ignoreResult`, else false */
  ignoreResult?: boolean;
  /**
   * Seconds. At `soft` the task is asked to stop (an abort signal in TypeScript, an exception in
   * Python); at `hard` the worker gives up on it.
   * @default the declaration's `timeLimit`, else none
   */
  timeLimit?: { soft?: number; hard?: number };
  /** A display name for logs and monitoring, instead of the task's name. @default none */
  shadow?: string;
  /** How many times the task has been retried already. @default 0 */
  retries?: number;
  /**
   * How to retry publishing when the broker fails with a retryable error, for this call; `false`
   * sends once. Unset fields keep the client's values.
   * @default the client's `publishRetry`
   */
  publishRetry?: RetryPolicy | false;
  /**
   * Deduplication for this call: a send whose key was sent within `ttl` seconds returns the
   * earlier task's handle instead of queueing again; `false` sends even if the task is unique.
   * @default the declaration's `unique`, else none
   */
  unique?: UniqueOptions | false;
}

/** `sendTask(name, options)`: a task known by name only, e.g. one a Python worker runs. */
export interface SendTaskOptions extends SendOptions {
  /** Positional arguments. @default [] */
  args?: unknown[];
}

export interface PreparedSend {
  message: TaskMessage;
  route: PublishOptions;
}

/** Builds the Celery message for one send and where it goes: call options over the declaration's. */
export function prepareSend(
  name: string,
  args: unknown[],
  options: SendOptions,
  defaults: TaskOptions,
  replyTo: string,
): PreparedSend {
  const now = Date.now();
  const eta = etaOf(name, options, now);
  const expires = options.expires ?? defaults.expires;
  const priority = options.priority ?? defaults.priority;
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 9)) {
    throw clientError(
      "CONFIG",
      `task ${name}: priority must be an integer from 0 to 9, got ${priority}`,
    );
  }
  const timeLimit = options.timeLimit ?? defaults.timeLimit;
  // A task sent from inside another becomes its child (parent_id, root_id), as in Celery.
  const parent = findCurrentTask();
  const message = createTaskMessage({
    task: name,
    ...(options.taskId !== undefined && { id: options.taskId }),
    args,
    kwargs: options.kwargs ?? {},
    eta,
    expires: expires === undefined ? null : moment(name, "expires", expires, now),
    retries: options.retries ?? 0,
    // Celery writes [hard, soft] (celery/app/amqp.py as_task_v2: [time_limit, soft_time_limit])
    // and its worker reads them in that order, whatever its protocol docs say.
    timeLimit: [timeLimit?.hard ?? null, timeLimit?.soft ?? null],
    rootId: parent ? (parent.rootId ?? parent.id) : null,
    parentId: parent?.id ?? null,
    shadow: options.shadow ?? null,
    ignoreResult: options.ignoreResult ?? defaults.ignoreResult ?? false,
    ...(priority !== undefined && { priority }),
    replyTo,
    headers: options.headers ?? {},
  });
  const route: PublishOptions = {
    queue: options.queue ?? defaults.queue ?? DEFAULT_QUEUE,
    ...(priority !== undefined && { priority }),
    ...(eta && { availableAt: eta.getTime() }),
  };
  return { message, route };
}

function etaOf(name: string, options: SendOptions, now: number): Date | null {
  if (options.countdown !== undefined && options.eta !== undefined) {
    throw clientError(
      "CONFIG",
      `task ${name}: give either countdown (seconds from now) or eta (a Date), not both`,
    );
  }
  if (options.countdown !== undefined) return moment(name, "countdown", options.countdown, now);
  if (options.eta !== undefined) return moment(name, "eta", options.eta, now);
  return null;
}

/** A Date as it is, or seconds from `now`; anything that is not a real moment is a CONFIG error. */
function moment(name: string, option: string, value: number | Date, now: number): Date {
  const date = value instanceof Date ? value : new Date(now + value * 1000);
  if (Number.isNaN(date.getTime())) {
    throw clientError(
      "CONFIG",
      `task ${name}: ${option} must be a number of seconds or a valid Date, got ${String(value)}`,
    );
  }
  return date;
}
