import {
  SOFTWARE_INFO,
  createEventPublisher,
  exceptionInfo,
  loadAverage,
  pythonRepr,
  type Broadcast,
  type EventPublisher,
  type Logger,
  type TaskMessage,
} from "@celery-ts/core";

/** Seconds between heartbeats: Celery's default. */
export const HEARTBEAT_INTERVAL = 2;

export interface WorkerEventsOptions {
  hostname: string;
  logger: Logger;
  /** Task events (task-received, -started, -succeeded...): Celery's `-E`. */
  taskEvents: boolean;
  /** worker-online, worker-heartbeat and worker-offline, as Celery sends unless `--without-heartbeat`. */
  workerEvents: boolean;
  /** Counts for heartbeats. */
  counts: () => { active: number; processed: number };
}

/**
 * The most task events in one message. Celery's dispatcher sends at most 24 (its `buffer_limit`):
 * a turn that starts 50 tasks then makes three messages, where one does. Receivers (`celery
 * events`, Flower) read a list of any length the same way, event by event; each message costs
 * a publish (its envelope, a socket write and a reply to read).
 */
const TASK_EVENTS_PER_MESSAGE = 128;

/** The last event of a task message. */
const FINAL = new Set([
  "task-succeeded",
  "task-failed",
  "task-retried",
  "task-rejected",
  "task-revoked",
]);

/** Celery's repr of an exception in events: `ValueError('boom')`. */
export function exceptionRepr(error: unknown): string {
  const { exc_type, exc_message } = exceptionInfo(error);
  return `${exc_type}(${exc_message.map((m) => pythonRepr(m)).join(", ")})`;
}

/** A worker's monitoring events, in Celery's format, with the heartbeat timer. */
export class WorkerEvents {
  #publisher: EventPublisher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #taskEvents: boolean;
  readonly #options: WorkerEventsOptions;
  #warned = false;
  /**
   * Tasks whose task-received was sent: only they send their later events, so a receiver never
   * sees half a task (a task-succeeded for a task received before `enable_events`).
   */
  readonly #announced = new Set<string>();
  /** Called with every task event, sent or not (metrics, traces). */
  readonly taps: ((type: string, message: TaskMessage, fields: Record<string, unknown>) => void)[] =
    [];

  constructor(options: WorkerEventsOptions) {
    this.#options = options;
    this.#taskEvents = options.taskEvents;
  }

  get taskEvents(): boolean {
    return this.#taskEvents;
  }

  set taskEvents(on: boolean) {
    this.#taskEvents = on;
  }

  start(broadcast: Broadcast): void {
    this.#publisher = createEventPublisher(broadcast, {
      hostname: this.#options.hostname,
      // As a Celery worker: the task events of one turn of the event loop go as one message.
      bufferGroups: ["task"],
      bufferLimit: TASK_EVENTS_PER_MESSAGE,
      onError: (error, type) => {
        if (this.#warned) return;
        this.#warned = true;
        this.#options.logger.warn(
          "could not send a monitoring event; events are dropped meanwhile",
          {
            type,
            error: String(error),
          },
        );
      },
    });
    if (!this.#options.workerEvents) return;
    void this.#worker("worker-online");
    this.#timer = setInterval(
      () => void this.#worker("worker-heartbeat"),
      HEARTBEAT_INTERVAL * 1000,
    );
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#publisher?.flush();
    if (this.#options.workerEvents) await this.#worker("worker-offline");
    this.#publisher = undefined;
    this.#announced.clear();
  }

  /** A heartbeat now (the `heartbeat` control command). */
  heartbeat(): void {
    void this.#worker("worker-heartbeat");
  }

  #worker(type: string): Promise<void> {
    const { active, processed } = this.#options.counts();
    return (
      this.#publisher?.send(type, {
        freq: HEARTBEAT_INTERVAL,
        active,
        processed,
        loadavg: loadAverage(),
        ...SOFTWARE_INFO,
      }) ?? Promise.resolve()
    );
  }

  /**
   * Sends a task-* event when task events are on and the task's task-received was sent (a task
   * received while they were off stays silent to its end). `standalone` events (a task-failed for
   * an unknown task name) need no task-received.
   */
  task(
    type: string,
    message: TaskMessage,
    fields: Record<string, unknown> = {},
    standalone = false,
  ): void {
    for (const tap of this.taps) tap(type, message, fields);
    const { id } = message.headers;
    if (type === "task-received") {
      if (this.#taskEvents) this.#announced.add(id);
    } else if (!standalone && !this.#announced.has(id)) {
      return;
    }
    // task-retried: the retry arrives as a new message, with its own task-received.
    if (FINAL.has(type)) this.#announced.delete(id);
    if (!this.#taskEvents || !this.#publisher) return;
    void this.#publisher.sendTask(type, id, fields);
  }

  /**
   * Whether `task()` would do anything for a task event of `message`: callers skip making the
   * event's fields (a repr of the result...) when it would not.
   */
  wanted(message: TaskMessage): boolean {
    return this.taps.length > 0 || this.#announced.has(message.headers.id);
  }

  received(message: TaskMessage): void {
    // Task events off, nothing tapping them: a task-received is not even made.
    if (!this.#taskEvents && this.taps.length === 0) return;
    const { headers } = message;
    this.task("task-received", message, {
      // Celery's request name: the shadow name, when the sender gave one.
      name: headers.shadow ?? headers.task,
      args: headers.argsrepr ?? pythonRepr(message.args),
      kwargs: headers.kwargsrepr ?? pythonRepr(message.kwargs),
      root_id: headers.root_id,
      parent_id: headers.parent_id,
      retries: headers.retries,
      eta: headers.eta,
      expires: headers.expires,
    });
  }

  failed(message: TaskMessage, error: unknown, standalone = false): void {
    this.task(
      "task-failed",
      message,
      {
        exception: exceptionRepr(error),
        traceback: error instanceof Error ? (error.stack ?? "") : "",
      },
      standalone,
    );
  }
}
