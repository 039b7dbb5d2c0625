import { hostname as osHostname } from "node:os";
import {
  CeleryTsError,
  TaskState,
  celeryNow,
  decodeTaskMessage,
  encodeTaskMessage,
  exceptionInfo,
  formatCeleryDate,
  isCeleryTsError,
  isReadyState,
  parseCeleryDate,
  resolveBackend,
  resolveTransport,
  retryDelaySeconds,
  silentLogger,
  type Delivery,
  type Logger,
  type ResultBackend,
  type ResultMeta,
  type RetryOptions,
  type AnyTaskDefinition,
  type TaskDefinition,
  type TaskMessage,
  type Transport,
} from "@celery-ts/core";
import { setLongTimeout, type LongTimeout } from "./internal/long-timeout.ts";
import { runTask, type RunOutcome } from "./internal/run-task.ts";

export interface WorkerOptions {
  /** A transport, or a broker URL such as `sqlite:///queue.db`. */
  broker: Transport | string;
  /** A result backend or its URL. Without one, results are not stored. */
  backend?: ResultBackend | string;
  /** The tasks this worker runs. */
  tasks: Iterable<AnyTaskDefinition>;
  /** Queues to consume. @default ["celery"] */
  queues?: string[];
  /** Tasks run at once in this process (async). @default 10 */
  concurrency?: number;
  /** Messages taken from the broker ahead of a free slot. @default concurrency */
  prefetch?: number;
  /** Seconds that running tasks get to finish after `stop()`. @default 30 */
  shutdownTimeout?: number;
  /** Messages with a larger body are rejected as malformed. @default 10 MiB */
  maxBodyBytes?: number;
  /** Shown in logs. @default `celery-ts@<hostname>` */
  hostname?: string;
  /** @default silent */
  logger?: Logger;
}

export interface Worker {
  readonly hostname: string;
  /** Connects and starts consuming; resolves once consuming has begun. */
  start(): Promise<void>;
  /**
   * Stops taking messages, returns prefetched ones to the broker, waits up to `shutdownTimeout`
   * for running tasks, then requeues what is still running and closes connections it opened.
   */
  stop(): Promise<void>;
  /** Resolves when the worker has stopped. */
  readonly stopped: Promise<void>;
}

interface Job {
  delivery: Delivery;
  message: TaskMessage;
  task: TaskDefinition;
}

/** A worker: consumes queues, runs tasks, stores results, acknowledges after storing. */
export function createWorker(options: WorkerOptions): Worker {
  const log = options.logger ?? silentLogger;
  const hostname = options.hostname ?? `celery-ts@${osHostname()}`;
  const concurrency = options.concurrency ?? 10;
  const prefetch = options.prefetch ?? concurrency;
  const queues = options.queues ?? ["celery"];
  const registry = new Map<string, TaskDefinition>();
  for (const task of options.tasks) {
    if (registry.has(task.name)) {
      throw new CeleryTsError("CONFIG", `two tasks are named "${task.name}"`, { pkg: "worker" });
    }
    registry.set(task.name, task);
  }

  const consuming = new AbortController();
  /** Read by the transport on every fetch: raised by one for each early message held. */
  const flow = { prefetch, signal: consuming.signal };
  const shutdown = new AbortController();
  const ready: Job[] = [];
  const held = new Map<LongTimeout, Job>();
  const running = new Set<Promise<void>>();
  /** Deliveries whose task is running now. */
  const active = new Set<Delivery>();
  /** Deliveries requeued at shutdown while their task still ran: its outcome is discarded. */
  const abandoned = new Set<Delivery>();
  let transport: Transport | undefined;
  let backend: ResultBackend | undefined;
  let consumeLoop: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));

  /** Settles a delivery, logging instead of throwing: a failed ack means a redelivery, not a crash. */
  const settle = async (
    delivery: Delivery,
    action: "ack" | "requeue" | "dead",
    reason?: string,
  ) => {
    if (abandoned.has(delivery)) return;
    try {
      if (action === "ack") await delivery.ack();
      else {
        await delivery.reject({
          requeue: action === "requeue",
          ...(reason !== undefined && { reason }),
        });
      }
    } catch (error) {
      log.error("could not settle a message with the broker; it will be redelivered", {
        action,
        error: String(error),
      });
    }
  };

  const deadLetter = async (
    delivery: Delivery,
    reason: string,
    fields: Record<string, unknown> = {},
  ) => {
    log.error(`rejected message: ${reason}`, { queue: delivery.queue, ...fields });
    await settle(delivery, "dead", reason);
  };

  /** Stores a state of the task in `message`, with where an rpc:// backend must send it. */
  const store = async (
    message: TaskMessage,
    meta: Pick<ResultMeta, "status" | "result" | "traceback" | "date_done">,
  ) => {
    if (!backend) return;
    const id = message.headers.id;
    const { reply_to: replyTo, correlation_id: correlationId } = message.properties;
    // Celery's field order, so the stored bytes match what a Python worker writes.
    const { status, result, traceback, date_done } = meta;
    await backend.store(
      id,
      { status, result, traceback, children: [], date_done, task_id: id },
      { ...(replyTo !== undefined && { replyTo }), correlationId },
    );
  };

  const receive = (delivery: Delivery): void => {
    if (delivery.error) {
      void deadLetter(delivery, delivery.error.message);
      return;
    }
    let message: TaskMessage;
    try {
      message = decodeTaskMessage(delivery.message, {
        ...(options.maxBodyBytes !== undefined && { maxBodyBytes: options.maxBodyBytes }),
      });
    } catch (error) {
      void deadLetter(delivery, (error as Error).message);
      return;
    }
    const { task: name, id } = message.headers;
    const task = registry.get(name);
    if (!task) {
      const known = [...registry.keys()].join(", ") || "none";
      void deadLetter(delivery, `unknown task "${name}": this worker registers ${known}`, { id });
      return;
    }
    const job = { delivery, message, task };
    const etaMs = message.headers.eta
      ? parseCeleryDate(message.headers.eta).getTime() - Date.now()
      : 0;
    if (etaMs > 0) {
      // Held unacknowledged, like Celery: if this process dies the broker redelivers it. Held
      // messages get prefetch slots of their own, so they never starve work that is due.
      flow.prefetch++;
      const timer = setLongTimeout(() => {
        held.delete(timer);
        flow.prefetch--;
        ready.push(job);
        dispatch();
      }, etaMs);
      held.set(timer, job);
      return;
    }
    ready.push(job);
    dispatch();
  };

  const dispatch = (): void => {
    while (running.size < concurrency && ready.length > 0 && !shutdown.signal.aborted) {
      const job = ready.shift()!;
      active.add(job.delivery);
      const execution = execute(job).catch((error: unknown) => {
        log.error("unexpected error while handling a task; it will be redelivered", {
          id: job.message.headers.id,
          error: String(error),
        });
        return settle(job.delivery, "requeue");
      });
      running.add(execution);
      void execution.finally(() => {
        running.delete(execution);
        active.delete(job.delivery);
        dispatch();
      });
    }
  };

  const execute = async ({ delivery, message, task }: Job): Promise<void> => {
    const { id, retries, expires } = message.headers;
    const fields = { task: task.name, id };
    const storeResults = !(task.options.ignoreResult || message.headers.ignore_result);
    if (expires && parseCeleryDate(expires).getTime() < Date.now()) {
      log.info("task expired before it ran; marked REVOKED", fields);
      if (storeResults)
        await store(message, {
          status: TaskState.REVOKED,
          result: {
            exc_type: "TaskRevokedError",
            exc_message: ["expired"],
            exc_module: "celery.exceptions",
          },
          traceback: null,
          date_done: celeryNow(),
        });
      await settle(delivery, "ack");
      return;
    }
    if (delivery.redelivered && backend) {
      const previous = await backend.get(id);
      if (previous && isReadyState(previous.status)) {
        log.info(`redelivered task already ${previous.status}; not running it again`, fields);
        await settle(delivery, "ack");
        return;
      }
    }
    if (storeResults && task.options.trackStarted) {
      await store(message, {
        status: TaskState.STARTED,
        result: { pid: process.pid, hostname },
        traceback: null,
        date_done: null,
      });
    }
    log.info("task started", {
      ...fields,
      retries,
      ...(delivery.redelivered && { redelivered: true }),
    });
    const started = performance.now();
    const outcome = await runTask({
      task,
      message,
      queue: delivery.queue,
      shutdown: shutdown.signal,
      updateState: (state, meta) =>
        store(message, { status: state, result: meta, traceback: null, date_done: null }),
    });
    if (abandoned.has(delivery)) return;
    const runtime = Number(((performance.now() - started) / 1000).toFixed(6));
    try {
      await finish(delivery, message, task, outcome, storeResults, { ...fields, runtime });
    } catch (error) {
      // The result could not be stored: leave the task to run again rather than lose it.
      log.error("could not store the task's result; requeued to run again", {
        ...fields,
        error: String(error),
      });
      await settle(delivery, "requeue");
    }
  };

  const finish = async (
    delivery: Delivery,
    message: TaskMessage,
    task: TaskDefinition,
    outcome: RunOutcome,
    storeResults: boolean,
    fields: Record<string, unknown>,
  ): Promise<void> => {
    switch (outcome.kind) {
      case "success":
        if (storeResults) {
          try {
            await store(message, {
              status: TaskState.SUCCESS,
              result: outcome.value,
              traceback: null,
              date_done: celeryNow(),
            });
          } catch (error) {
            if (!isCeleryTsError(error, "ENCODE")) throw error;
            return finish(
              delivery,
              message,
              task,
              { kind: "failure", error },
              storeResults,
              fields,
            );
          }
        }
        log.info("task succeeded", fields);
        return settle(delivery, "ack");
      case "retry":
        return retry(delivery, message, task, outcome.options, storeResults, fields);
      case "failure":
        if (storeResults) await storeFailure(message, outcome.error);
        log.error("task failed", { ...fields, error: describe(outcome.error) });
        return settle(delivery, "ack");
      case "signal": {
        const { signal } = outcome;
        if (signal.kind === "ignore") {
          log.info(`task ignored: ${signal.message}`, fields);
          return settle(delivery, "ack");
        }
        log.warn(`task rejected: ${signal.message}`, { ...fields, requeue: signal.requeue });
        return settle(delivery, signal.requeue ? "requeue" : "dead", signal.message);
      }
    }
  };

  const storeFailure = (message: TaskMessage, error: unknown): Promise<void> =>
    store(message, {
      status: TaskState.FAILURE,
      result: exceptionInfo(error),
      traceback: error instanceof Error ? (error.stack ?? null) : null,
      date_done: celeryNow(),
    });

  /** A retry is a new message with the same id, one more retry and an eta; then the old one is acked. */
  const retry = async (
    delivery: Delivery,
    message: TaskMessage,
    task: TaskDefinition,
    retryOptions: RetryOptions,
    storeResults: boolean,
    fields: Record<string, unknown>,
  ): Promise<void> => {
    const { retries } = message.headers;
    const policy = task.options.retry ?? {};
    const maxRetries = retryOptions.maxRetries ?? policy.maxRetries ?? 3;
    const cause = retryOptions.error ?? new Error("retry requested");
    if (retries >= maxRetries) {
      if (storeResults) await storeFailure(message, cause);
      log.error(`task failed after ${retries} retries`, { ...fields, error: describe(cause) });
      return settle(delivery, "ack");
    }
    const eta =
      retryOptions.eta ??
      new Date(Date.now() + 1000 * (retryOptions.countdown ?? retryDelaySeconds(policy, retries)));
    const next: TaskMessage = {
      ...message,
      headers: { ...message.headers, retries: retries + 1, eta: formatCeleryDate(eta) },
    };
    const priority = message.properties.priority;
    await transport!.publish(encodeTaskMessage(next), {
      queue: delivery.queue,
      availableAt: eta.getTime(),
      ...(typeof priority === "number" && { priority }),
    });
    if (storeResults) {
      await store(message, {
        status: TaskState.RETRY,
        result: exceptionInfo(cause),
        traceback: cause instanceof Error ? (cause.stack ?? null) : null,
        date_done: null,
      });
    }
    log.warn(`task will retry at ${eta.toISOString()}`, {
      ...fields,
      retry: retries + 1,
      error: describe(cause),
    });
    await settle(delivery, "ack");
  };

  const start = async (): Promise<void> => {
    transport = await resolveTransport(options.broker);
    backend = options.backend === undefined ? undefined : await resolveBackend(options.backend);
    await transport.connect();
    await backend?.connect();
    log.info("worker ready", {
      hostname,
      transport: transport.name,
      backend: backend?.name ?? "none",
      queues,
      concurrency,
      tasks: [...registry.keys()],
    });
    consumeLoop = transport.consume(queues, receive, flow).catch((error: unknown) => {
      log.error("consuming stopped on an error; stopping the worker", { error: String(error) });
      void stop();
    });
  };

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      consuming.abort();
      await consumeLoop;
      const waiting = [...ready.splice(0), ...held.values()];
      held.forEach((_job, timer) => timer.clear());
      held.clear();
      await Promise.all(waiting.map((job) => settle(job.delivery, "requeue")));
      const graceMs = (options.shutdownTimeout ?? 30) * 1000;
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"timeout">(
        (resolve) => (timer = setTimeout(resolve, graceMs, "timeout")),
      );
      const drained = await Promise.race([
        Promise.all(running).then(() => "done" as const),
        graceOver,
      ]);
      clearTimeout(timer);
      if (drained === "timeout") {
        log.warn(`${active.size} task(s) still running after the shutdown timeout; requeued`);
        shutdown.abort(
          new CeleryTsError("CLOSED", "the worker is shutting down", { pkg: "worker" }),
        );
        await Promise.all(
          [...active].map(async (delivery) => {
            await settle(delivery, "requeue");
            abandoned.add(delivery);
          }),
        );
      }
      // Connections the worker opened from URLs are its own to close; objects belong to the caller.
      if (typeof options.broker === "string") await transport?.close();
      if (typeof options.backend === "string") await backend?.close();
      log.info("worker stopped", { hostname });
      resolveStopped();
    })();
    return stopping;
  };

  return { hostname, start, stop, stopped };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
