import { randomUUID } from "node:crypto";
import {
  CeleryTsError,
  createResultWaiters,
  decodeJson,
  encodeJson,
  isReadyState,
  silentLogger,
  type Logger,
  type ResultBackend,
  type ResultMeta,
  type StoreOptions,
  type Transport,
  type WaitOptions,
} from "@celery-ts/core";
import type { Channel, ConsumeMessage } from "amqplib";
import {
  createConnectionManager,
  type ConnectionManager,
  type Session,
} from "./internal/connection.ts";
import { PKG, closedError, configError, mapAmqpError } from "./internal/errors.ts";
import { encodeFieldTable } from "./internal/field-table.ts";
import { durationOption, resolveConnection, type ConnectionOptions } from "./internal/options.ts";
import { internalsOf, registerInternals } from "./internal/registry.ts";
import { declarationKey } from "./internal/topology.ts";

export interface RpcBackendOptions extends ConnectionOptions {
  /**
   * Use this transport's connection (one made by `createAmqpTransport`), as Celery's `rpc://`
   * uses the broker's; `url` and the other connection options are then ignored. Closing the
   * backend leaves the transport's connection open.
   * @default its own connection to `url`
   */
  broker?: Transport;
  /**
   * The queue this process's results come back on (Celery's `oid`): the `reply_to` of the tasks
   * it sends. One per process; two processes must not share one.
   * @default a random UUID
   */
  replyQueue?: string;
  /**
   * The reply queue is deleted after it has had no consumer for this long (`x-expires`): it
   * survives a reconnect, and goes away after its process has.
   * @default 60_000
   */
  replyQueueExpiresMs?: number;
  /** Send results as persistent messages (Celery's `result_persistent`). @default false */
  persistent?: boolean;
  /**
   * Results that arrived are kept in memory for `get()` and `waitFor()`, at most this many; the
   * oldest are dropped first.
   * @default 10_000
   */
  maxCachedResults?: number;
  /** How long `store()` waits for RabbitMQ's confirm. @default 10_000 */
  publishTimeoutMs?: number;
  /** @default silentLogger */
  logger?: Logger;
}

/** Celery's rpc:// result backend: results travel as messages to the sender's reply queue. */
export interface RpcBackend extends ResultBackend {
  /** The reply queue's name. */
  readonly replyQueue: string;
  /**
   * Declares the reply queue and starts reading it, then returns its name: what a client must
   * send as `reply_to`, before it publishes, so that no result arrives before the queue exists.
   */
  replyTo(): Promise<string>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Celery's `rpc://` result backend. A worker publishes each state of a task to the `reply_to`
 * queue of its message, on the default exchange, with the message's `correlation_id` and
 * Celery's body `{task_id, status, result, traceback, children}`; the client that sent the task
 * reads them from its reply queue. Results reach only that client, and only while it runs: there
 * is no store to ask later (see the README's limits).
 */
export function createRpcBackend(options: RpcBackendOptions = {}): RpcBackend {
  const logger = options.logger ?? silentLogger;
  const replyQueue = options.replyQueue ?? randomUUID();
  if (replyQueue === "") throw configError("replyQueue must not be empty");
  const expiresMs = durationOption("replyQueueExpiresMs", options.replyQueueExpiresMs, 60_000);
  const maxCached = options.maxCachedResults ?? 10_000;
  if (!Number.isInteger(maxCached) || maxCached < 1) {
    throw configError(`maxCachedResults must be a positive integer, got ${String(maxCached)}`);
  }
  let manager: ConnectionManager;
  let ownsConnection: boolean;
  let publishTimeoutMs: number;
  let reconnectDelayMs: number;
  if (options.broker) {
    const internals = internalsOf(options.broker);
    if (!internals) {
      throw configError(
        "the broker option takes a transport made by createAmqpTransport (rpc:// results " +
          "travel over RabbitMQ)",
      );
    }
    manager = internals.manager;
    ownsConnection = false;
    publishTimeoutMs = options.publishTimeoutMs ?? internals.publishTimeoutMs;
    reconnectDelayMs = 100;
  } else {
    const connection = resolveConnection(options);
    manager = createConnectionManager({ ...connection, logger, what: "rpc backend" });
    ownsConnection = true;
    publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
    reconnectDelayMs = connection.reconnectInitialDelayMs;
  }
  durationOption("publishTimeoutMs", publishTimeoutMs, 10_000);
  const deliveryMode = options.persistent ? 2 : 1;

  /** Latest state per task, in arrival order (a Map iterates oldest first). */
  const cache = new Map<string, string>();
  const waiters = createResultWaiters();
  let closed = false;
  let reading: Promise<void> | undefined;
  let unsubscribe: (() => void) | undefined;
  let channel: Channel | undefined;

  const ensureOpen = (): void => {
    if (closed) throw closedError("rpc backend");
  };

  const remember = (taskId: string, json: string): void => {
    cache.delete(taskId);
    cache.set(taskId, json);
    while (cache.size > maxCached) cache.delete(cache.keys().next().value!);
  };

  const read = (taskId: string): ResultMeta | undefined => {
    const json = cache.get(taskId);
    return json === undefined ? undefined : (decodeJson(json) as ResultMeta);
  };

  const onReply = (message: ConsumeMessage): void => {
    let body: Record<string, unknown>;
    try {
      const decoded = decodeJson(message.content.toString("utf8"));
      if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
        throw new Error("not a JSON object");
      }
      body = decoded as Record<string, unknown>;
    } catch (error) {
      logger.warn("amqp: ignored a reply that is not a Celery result", {
        queue: replyQueue,
        error: String(error),
      });
      return;
    }
    const correlationId = message.properties.correlationId as unknown;
    const taskId =
      typeof body.task_id === "string"
        ? body.task_id
        : typeof correlationId === "string"
          ? correlationId
          : undefined;
    if (taskId === undefined || typeof body.status !== "string") {
      logger.warn("amqp: ignored a reply without task_id and status", { queue: replyQueue });
      return;
    }
    const meta: ResultMeta = {
      ...body,
      status: body.status,
      result: body.result ?? null,
      traceback: typeof body.traceback === "string" ? body.traceback : null,
      children: Array.isArray(body.children) ? body.children : [],
      date_done: typeof body.date_done === "string" ? body.date_done : null,
      task_id: taskId,
    };
    const json = encodeJson(meta);
    remember(taskId, json);
    if (isReadyState(meta.status)) {
      waiters.resolve(taskId, () => decodeJson(json) as ResultMeta);
    }
  };

  const declareReplyQueue = (session: Session): Promise<void> =>
    session.declare(
      declarationKey("reply-queue", replyQueue, expiresMs),
      `declare the reply queue "${replyQueue}"`,
      async (ch) => {
        // Celery's binding is durable=False, auto_delete=True. Ours is durable and not
        // auto-deleted, so that results sent while a connection is re-established wait for it
        // (x-expires removes it once unused); RabbitMQ 4.3 refuses non-durable, non-exclusive
        // queues by default (the transient_nonexcl_queues deprecated feature).
        await ch.assertQueue(replyQueue, {
          durable: true,
          autoDelete: false,
          exclusive: false,
          arguments: encodeFieldTable({ "x-expires": expiresMs }),
        });
      },
    );

  /** Reads the reply queue on `session`; resolves once consuming, rejects on failure. */
  const attach = async (session: Session): Promise<void> => {
    await declareReplyQueue(session);
    const ch = await session.channel();
    try {
      // null: the server cancelled the consumer (the queue was deleted). Closing the channel
      // declares the queue again and reads it anew (below).
      await ch.consume(
        replyQueue,
        (message) => (message === null ? void ch.close().catch(() => undefined) : onReply(message)),
        { noAck: true },
      );
    } catch (error) {
      await ch.close().catch(() => undefined);
      throw mapAmqpError(error, `read the reply queue "${replyQueue}"`);
    }
    channel = ch;
    ch.on("close", () => {
      if (channel === ch) channel = undefined;
      // A channel lost while the connection stays (the queue was deleted): read it again.
      if (!closed && session.alive) {
        session.forget(JSON.stringify(replyQueue));
        void sleep(reconnectDelayMs).then(() => {
          if (!closed && session.alive && !channel) return attach(session).catch(() => undefined);
        });
      }
    });
  };

  /** Starts reading the reply queue (once), and keeps reading it across reconnects. */
  const startReading = (): Promise<void> => {
    ensureOpen();
    reading ??= (async () => {
      const session = await manager.open();
      await attach(session);
      unsubscribe = manager.subscribe({
        up: (next) => {
          if (next !== session || !channel) {
            void attach(next).catch((error: unknown) => {
              logger.warn("amqp: could not read the reply queue again", { error: String(error) });
            });
          }
        },
        down: () => {
          channel = undefined;
        },
      });
    })().catch((error: unknown) => {
      reading = undefined;
      throw error;
    });
    return reading;
  };

  const backend: RpcBackend = {
    name: "rpc",
    replyQueue,
    async connect() {
      ensureOpen();
      await manager.open();
    },
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe?.();
      waiters.rejectAll(closedError("rpc backend"));
      if (ownsConnection) await manager.close();
      else await channel?.close().catch(() => undefined);
      channel = undefined;
    },
    async replyTo() {
      await startReading();
      return replyQueue;
    },
    // The worker passes the task message's reply_to and correlation_id; without a reply_to there
    // is no one to answer, and nothing is sent, as in Celery.
    async store(taskId: string, meta: ResultMeta, storeOptions: StoreOptions = {}) {
      ensureOpen();
      // As Celery's RPCBackend.store_result: no reply_to, no one to tell.
      if (storeOptions.replyTo === undefined || storeOptions.replyTo === "") {
        logger.debug(
          "amqp: no reply_to for the result of task; not sent (rpc:// replies only to the sender)",
          {
            taskId,
          },
        );
        return;
      }
      const body = encodeJson({
        task_id: taskId,
        status: meta.status,
        result: meta.result,
        traceback: meta.traceback,
        children: meta.children,
      });
      const session = await manager.open();
      try {
        await session.publish({
          exchange: "",
          routingKey: storeOptions.replyTo,
          content: Buffer.from(body, "utf8"),
          options: {
            contentType: "application/json",
            contentEncoding: "utf-8",
            correlationId: storeOptions.correlationId ?? taskId,
            deliveryMode,
            priority: 0,
            headers: {},
          },
          what: `send the result of task ${taskId} to the reply queue "${storeOptions.replyTo}"`,
          timeoutMs: publishTimeoutMs,
        });
      } catch (error) {
        throw mapAmqpError(error, `send the result of task ${taskId}`);
      }
    },
    async get(taskId: string) {
      ensureOpen();
      return read(taskId);
    },
    async waitFor(taskId: string, options: WaitOptions) {
      ensureOpen();
      await startReading();
      ensureOpen();
      const meta = read(taskId);
      if (meta && isReadyState(meta.status)) return meta;
      return waiters.wait(taskId, {
        ...options,
        timeoutError: () =>
          new CeleryTsError(
            "TIMEOUT",
            `no result for task ${taskId} within ${options.timeoutMs} ms on the reply queue ` +
              `"${replyQueue}" (rpc:// results go only to the client that sent the task)`,
            { pkg: PKG, retryable: true },
          ),
      });
    },
    async forget(taskId: string) {
      cache.delete(taskId);
    },
  };
  registerInternals(backend, { manager, publishTimeoutMs });
  return backend;
}
