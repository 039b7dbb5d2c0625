import { randomUUID } from "node:crypto";
import {
  encodeTaskMessage,
  resolveBackend,
  resolveTransport,
  silentLogger,
  type Logger,
  type ResultBackend,
  type RetryPolicy,
  type TaskDeclaration,
  type TaskOptions,
  type Transport,
} from "@celery-ts/core";
import { createAsyncResult, type AsyncResult } from "./async-result.ts";
import { clientError, closedError } from "./internal/errors.ts";
import { lazyConnection } from "./internal/lazy-connection.ts";
import { publishWithRetry } from "./internal/publish-with-retry.ts";
import { prepareSend, type SendOptions, type SendTaskOptions } from "./send-options.ts";
import type { TaskHandle } from "./task-handle.ts";

/** Publishing retries: a few quick attempts, so a broker blip does not fail a web request. */
export const DEFAULT_PUBLISH_RETRY: Readonly<Required<RetryPolicy>> = Object.freeze({
  maxRetries: 3,
  delay: 0.2,
  backoff: "exponential",
  maxDelay: 2,
  jitter: true,
});

export interface ClientOptions {
  /**
   * The broker: a `Transport`, or a URL (`redis://127.0.0.1:6379/0`, `sqlite:///queue.db`,
   * `amqp://guest:guest@127.0.0.1:5672//`, `memory://name`) resolved by the scheme's driver
   * package on first use. A transport given as an object stays yours to close.
   */
  broker: Transport | string;
  /**
   * Where task states and results are read: a `ResultBackend` or a URL (`sqlite:///results.db`,
   * `redis://127.0.0.1:6379/1`). Without one, tasks can still be sent; reading a result rejects
   * with `NO_RESULT_BACKEND`.
   * @default none
   */
  backend?: ResultBackend | string;
  /** Where the client reports retries and sends (it never writes to the console). @default silentLogger */
  logger?: Logger;
  /**
   * How publishing is retried when the broker fails with a retryable error (a lost connection);
   * `false` sends once. Delays are seconds. Unset fields take the defaults.
   * @default DEFAULT_PUBLISH_RETRY: 3 retries, 0.2 s doubling up to 2 s, with jitter
   */
  publishRetry?: RetryPolicy | false;
}

/** Sends tasks and reads their results. Create one per process and share it. */
export interface Client {
  /** Binds a task declaration (or definition) to this client, keeping its argument and result types. */
  task<Args extends unknown[], Result>(
    declaration: TaskDeclaration<Args, Result>,
  ): TaskHandle<Args, Result>;
  /**
   * Sends a task by name, e.g. one only a Python worker implements. `R` types the result; nothing
   * checks it at runtime.
   */
  sendTask<R = unknown>(name: string, options?: SendTaskOptions): Promise<AsyncResult<R>>;
  /** A handle on a task sent earlier, by anyone, from its id. */
  asyncResult<R = unknown>(taskId: string): AsyncResult<R>;
  /** Resolves URLs and connects the broker and backend now, rather than on first use. Idempotent. */
  connect(): Promise<void>;
  /**
   * Waits for sends under way, then closes the broker and backend the client built from URLs
   * (objects given to it stay open: they are the caller's). Idempotent; afterwards every method
   * rejects with a `CLOSED` error.
   */
  close(): Promise<void>;
}

export function createClient(options: ClientOptions): Client {
  const logger = options.logger ?? silentLogger;
  const broker = lazyConnection(options.broker, resolveTransport);
  const backend =
    options.backend === undefined ? undefined : lazyConnection(options.backend, resolveBackend);
  const clientPolicy =
    options.publishRetry === false ? false : { ...DEFAULT_PUBLISH_RETRY, ...options.publishRetry };
  // Celery's app oid: one reply address per client. An rpc:// backend names its own reply queue.
  const oid = randomUUID();
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  const ensureOpen = (): void => {
    if (closing) throw closedError();
  };

  const resultBackend = async (): Promise<ResultBackend> => {
    ensureOpen();
    if (!backend) {
      throw clientError(
        "NO_RESULT_BACKEND",
        "no result backend is configured, so task states and results cannot be read; " +
          'configure one, e.g. createClient({ broker, backend: "sqlite:///results.db" })',
      );
    }
    return backend.get();
  };

  /** Where workers send results: an rpc:// backend's reply queue, else the client's oid. */
  const replyAddress = async (): Promise<string> => {
    const results = backend && (await backend.get());
    return results?.replyTo ? results.replyTo() : oid;
  };

  const publishPolicy = (call: RetryPolicy | false | undefined): Required<RetryPolicy> | false => {
    if (call === undefined) return clientPolicy;
    return call === false ? false : { ...(clientPolicy || DEFAULT_PUBLISH_RETRY), ...call };
  };

  const publish = async <R>(
    name: string,
    args: unknown[],
    options: SendOptions,
    defaults: TaskOptions,
  ): Promise<AsyncResult<R>> => {
    const { message, route } = prepareSend(name, args, options, defaults, await replyAddress());
    const wire = encodeTaskMessage(message);
    const id = message.headers.id;
    const transport = await broker.get();
    const fields = { task: name, id, queue: route.queue, broker: transport.name };
    await publishWithRetry(() => transport.publish(wire, route), {
      what: `task ${name}[${id}] to queue "${route.queue}" on the ${transport.name} broker`,
      policy: publishPolicy(options.publishRetry),
      logger,
      fields,
    });
    logger.debug("task sent", fields);
    return createAsyncResult<R>(id, name, resultBackend);
  };

  // Tracked so that close() lets sends under way (and their retries) finish first.
  const send = async <R>(
    name: string,
    args: unknown[],
    options: SendOptions,
    defaults: TaskOptions,
  ): Promise<AsyncResult<R>> => {
    ensureOpen();
    const sending = publish<R>(name, args, options, defaults);
    inFlight.add(sending);
    try {
      return await sending;
    } finally {
      inFlight.delete(sending);
    }
  };

  return {
    task<Args extends unknown[], Result>(
      declaration: TaskDeclaration<Args, Result>,
    ): TaskHandle<Args, Result> {
      ensureOpen();
      const { name, options: defaults } = declaration;
      return Object.freeze({
        name,
        declaration,
        delay: (...args: Args) => send<Result>(name, args, {}, defaults),
        applyAsync: (args: Args, sendOptions: SendOptions = {}) =>
          send<Result>(name, args, sendOptions, defaults),
      });
    },
    sendTask<R = unknown>(name: string, { args = [], ...sendOptions }: SendTaskOptions = {}) {
      return send<R>(name, args, sendOptions, {});
    },
    asyncResult<R = unknown>(taskId: string): AsyncResult<R> {
      ensureOpen();
      return createAsyncResult<R>(taskId, undefined, resultBackend);
    },
    async connect() {
      ensureOpen();
      await Promise.all([broker.connect(), backend?.connect()]);
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled(inFlight);
        await Promise.all([broker.close(), backend?.close()]);
      })();
      return closing;
    },
  };
}
