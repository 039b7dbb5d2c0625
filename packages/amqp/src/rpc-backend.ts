import { randomUUID } from "node:crypto";
import {
  encodeJson,
  silentLogger,
  type Logger,
  type ResultBackend,
  type ResultMeta,
  type StoreOptions,
  type Transport,
} from "@celery-ts/core";
import { durationOption, toMs } from "@celery-ts/core/driver";
import { createConnectionManager, type ConnectionManager } from "./internal/connection.ts";
import { PKG, closedError, configError, mapAmqpError } from "./internal/errors.ts";
import { resolveConnection, type ConnectionOptions } from "./internal/options.ts";
import { internalsOf, registerInternals } from "./internal/registry.ts";
import { ReplyInbox } from "./internal/reply-inbox.ts";

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
   * Seconds after which the reply queue is deleted once it has no consumer (`x-expires`): it
   * survives a reconnect, and goes away after its process has.
   * @default 60
   */
  replyQueueExpires?: number;
  /** Send results as persistent messages (Celery's `result_persistent`). @default false */
  persistent?: boolean;
  /**
   * Results that arrived are kept in memory for `get()` and `waitFor()`, at most this many; the
   * oldest are dropped first.
   * @default 10_000
   */
  maxCachedResults?: number;
  /** Seconds `store()` waits for RabbitMQ's confirm. @default 10, or the broker's */
  publishTimeout?: number;
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

interface RpcConnection {
  manager: ConnectionManager;
  /** False when the connection is a transport's (closing the backend leaves it open). */
  owns: boolean;
  publishTimeoutMs: number;
}

/** The backend's connection: the broker transport's, or its own. */
function rpcConnection(options: RpcBackendOptions, logger: Logger): RpcConnection {
  const publishTimeout = durationOption(PKG, "publishTimeout", options.publishTimeout, 10);
  if (!options.broker) {
    const connection = resolveConnection(options);
    return {
      manager: createConnectionManager({ ...connection, logger, what: "rpc backend" }),
      owns: true,
      publishTimeoutMs: toMs(publishTimeout),
    };
  }
  const internals = internalsOf(options.broker);
  if (!internals) {
    throw configError(
      "the broker option takes a transport made by createAmqpTransport (rpc:// results " +
        "travel over RabbitMQ)",
    );
  }
  return {
    manager: internals.manager,
    owns: false,
    publishTimeoutMs:
      options.publishTimeout === undefined ? internals.publishTimeoutMs : toMs(publishTimeout),
  };
}

/** Publishes a result as Celery's RPCBackend does: to `reply_to`, by `correlation_id`. */
async function sendResult(
  connection: RpcConnection,
  persistent: boolean,
  request: { taskId: string; meta: ResultMeta; replyTo: string; correlationId: string },
): Promise<void> {
  const { taskId, meta, replyTo } = request;
  const body = encodeJson({
    task_id: taskId,
    status: meta.status,
    result: meta.result,
    traceback: meta.traceback,
    children: meta.children,
  });
  const session = await connection.manager.open();
  try {
    await session.publish({
      exchange: "",
      routingKey: replyTo,
      content: Buffer.from(body, "utf8"),
      options: {
        contentType: "application/json",
        contentEncoding: "utf-8",
        correlationId: request.correlationId,
        deliveryMode: persistent ? 2 : 1,
        priority: 0,
        headers: {},
      },
      what: `send the result of task ${taskId} to the reply queue "${replyTo}"`,
      timeoutMs: connection.publishTimeoutMs,
    });
  } catch (error) {
    throw mapAmqpError(error, `send the result of task ${taskId}`);
  }
}

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
  const expires = durationOption(PKG, "replyQueueExpires", options.replyQueueExpires, 60);
  const maxCached = options.maxCachedResults ?? 10_000;
  if (!Number.isInteger(maxCached) || maxCached < 1) {
    throw configError(`maxCachedResults must be a positive integer, got ${String(maxCached)}`);
  }
  const connection = rpcConnection(options, logger);
  const { manager } = connection;
  const inbox = new ReplyInbox({
    manager,
    logger,
    replyQueue,
    expiresMs: toMs(expires),
    maxCached,
  });
  let closed = false;
  const ensureOpen = (): void => {
    if (closed) throw closedError("rpc backend");
  };

  const backend: RpcBackend = {
    name: "rpc",
    // Celery's RPCBackend.ensure_chords_allowed() refuses chords too: results go to one client.
    noChords:
      "the rpc:// result backend does not support chords (each result goes to its sender's " +
      "reply queue, so no worker can count a chord's parts); use a Redis or SQLite backend",
    replyQueue,
    async connect() {
      ensureOpen();
      await manager.open();
    },
    async close() {
      if (closed) return;
      closed = true;
      await inbox.close(!connection.owns);
      if (connection.owns) await manager.close();
    },
    async replyTo() {
      ensureOpen();
      await inbox.start();
      return replyQueue;
    },
    // The worker passes the task message's reply_to and correlation_id; without a reply_to there
    // is no one to answer, and nothing is sent, as in Celery's RPCBackend.store_result.
    async store(taskId: string, meta: ResultMeta, storeOptions: StoreOptions = {}) {
      ensureOpen();
      const { replyTo, correlationId = taskId } = storeOptions;
      if (replyTo === undefined || replyTo === "") {
        logger.debug(
          "amqp: no reply_to for the result of task; not sent (rpc:// replies only to the sender)",
          { taskId },
        );
        return;
      }
      await sendResult(connection, options.persistent ?? false, {
        taskId,
        meta,
        replyTo,
        correlationId,
      });
    },
    async get(taskId: string) {
      ensureOpen();
      return inbox.read(taskId);
    },
    async waitFor(taskId, waitOptions) {
      ensureOpen();
      return inbox.wait(taskId, waitOptions);
    },
    async forget(taskId: string) {
      inbox.forget(taskId);
    },
  };
  registerInternals(backend, { manager, publishTimeoutMs: connection.publishTimeoutMs });
  return backend;
}
