import {
  createResultWaiters,
  decodeJson,
  encodeJson,
  isReadyState,
  resultTimeoutError,
  type Logger,
  type ResultMeta,
  type WaitOptions,
} from "@celery-ts/core";
import type { Channel, ConsumeMessage } from "amqplib";
import type { ConnectionManager, Session } from "./connection.ts";
import { closedError, mapAmqpError, PKG } from "./errors.ts";
import { encodeFieldTable } from "./field-table.ts";
import { reattach } from "./reattach.ts";
import { declarationKey } from "./topology.ts";

export interface ReplyInboxOptions {
  manager: ConnectionManager;
  logger: Logger;
  replyQueue: string;
  /** The reply queue's `x-expires`, in ms. */
  expiresMs: number;
  /** Results kept for `get()` and `waitFor()`, at most. */
  maxCached: number;
}

/** A Celery result message as meta, or undefined (logged) when it is not one. */
function parseReply(
  message: ConsumeMessage,
  logger: Logger,
  queue: string,
): ResultMeta | undefined {
  let body: Record<string, unknown>;
  try {
    const decoded = decodeJson(message.content.toString("utf8"));
    if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
      throw new Error("not a JSON object");
    }
    body = decoded as Record<string, unknown>;
  } catch (error) {
    logger.warn("amqp: ignored a reply that is not a Celery result", {
      queue,
      error: String(error),
    });
    return undefined;
  }
  const correlationId = message.properties.correlationId as unknown;
  const taskId =
    typeof body.task_id === "string"
      ? body.task_id
      : typeof correlationId === "string"
        ? correlationId
        : undefined;
  if (taskId === undefined || typeof body.status !== "string") {
    logger.warn("amqp: ignored a reply without task_id and status", { queue });
    return undefined;
  }
  return {
    ...body,
    status: body.status,
    result: body.result ?? null,
    traceback: typeof body.traceback === "string" ? body.traceback : null,
    children: Array.isArray(body.children) ? body.children : [],
    date_done: typeof body.date_done === "string" ? body.date_done : null,
    task_id: taskId,
  };
}

/**
 * The reply queue of an rpc:// backend: declared and read once asked for, read again after a
 * reconnect or a deletion (retried as the connection is: its backoff, at most its
 * `reconnectAttempts` in a row, after which the waits fail with the error); the latest state of
 * each task kept (a bounded cache) for `get()` and `waitFor()`.
 */
export class ReplyInbox {
  readonly #options: ReplyInboxOptions;
  /** Latest state per task, in arrival order (a Map iterates oldest first). */
  readonly #cache = new Map<string, string>();
  readonly #waiters = createResultWaiters();
  #closed = false;
  /** Aborted by close(): ends a backoff under way (see reattach). */
  readonly #closing = new AbortController();
  #reading: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #channel: Channel | undefined;
  /** The session a read is being set up on again, while it is. */
  #reattaching: Session | undefined;

  constructor(options: ReplyInboxOptions) {
    this.#options = options;
  }

  /** The latest state of `taskId` that arrived, if any. */
  read(taskId: string): ResultMeta | undefined {
    const json = this.#cache.get(taskId);
    return json === undefined ? undefined : (decodeJson(json) as ResultMeta);
  }

  forget(taskId: string): void {
    this.#cache.delete(taskId);
  }

  /** Waits for a ready state of `taskId` (reading the queue first). */
  async wait(taskId: string, options: WaitOptions): Promise<ResultMeta> {
    await this.start();
    if (this.#closed) throw closedError("rpc backend");
    const meta = this.read(taskId);
    if (meta && isReadyState(meta.status)) return meta;
    return this.#waiters.wait(taskId, {
      ...options,
      timeoutError: () =>
        resultTimeoutError(
          PKG,
          taskId,
          options.timeout,
          ` on the reply queue "${this.#options.replyQueue}" (rpc:// results go only to the ` +
            "client that sent the task)",
        ),
    });
  }

  /** Starts reading the reply queue (once), and keeps reading it across reconnects. */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("rpc backend"));
    this.#reading ??= this.#startOnce().catch((error: unknown) => {
      this.#reading = undefined;
      throw error;
    });
    return this.#reading;
  }

  /** Stops reading and rejects every wait; closes the channel when `closeChannel`. */
  async close(closeChannel: boolean): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    this.#unsubscribe?.();
    this.#waiters.rejectAll(closedError("rpc backend"));
    if (closeChannel) await this.#channel?.close().catch(() => undefined);
    this.#channel = undefined;
  }

  async #startOnce(): Promise<void> {
    const { manager } = this.#options;
    const session = await manager.open();
    await this.#attach(session);
    this.#unsubscribe = manager.subscribe({
      up: (next) => {
        if (next === session && this.#channel) return;
        this.#reattach(next);
      },
      down: () => {
        this.#channel = undefined;
      },
      // The connection's own reconnect loop gave up (its reconnectAttempts).
      gaveUp: (error) => this.#giveUp(error),
    });
  }

  /** Reads the reply queue again on `session`, retried with the connection's policy. */
  #reattach(session: Session): void {
    if (this.#reattaching === session) return;
    this.#reattaching = session;
    const { manager, logger, replyQueue } = this.#options;
    reattach({
      policy: manager.retryPolicy,
      logger,
      what: `rpc backend: read the reply queue "${replyQueue}" again`,
      wanted: () => !this.#closed && session.alive && this.#channel === undefined,
      attempt: () => this.#attach(session),
      signal: this.#closing.signal,
    })
      .catch((error: unknown) => this.#giveUp(error))
      .finally(() => {
        if (this.#reattaching === session) this.#reattaching = undefined;
      });
  }

  /**
   * The reply queue cannot be read: every wait fails with the error (results sent meanwhile wait
   * in the queue until it expires), and the next wait tries again from the start.
   */
  #giveUp(error: unknown): void {
    if (this.#closed) return;
    this.#options.logger.error("amqp: rpc backend stopped reading the reply queue", {
      queue: this.#options.replyQueue,
      error: String(error),
    });
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#reading = undefined;
    this.#waiters.rejectAll(error);
  }

  #declare(session: Session): Promise<void> {
    const { replyQueue, expiresMs } = this.#options;
    return session.declare(
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
  }

  /** Reads the reply queue on `session`; resolves once consuming, rejects on failure. */
  async #attach(session: Session): Promise<void> {
    const { replyQueue } = this.#options;
    await this.#declare(session);
    const ch = await session.channel();
    try {
      // null: the server cancelled the consumer (the queue was deleted). Closing the channel
      // declares the queue again and reads it anew (below).
      await ch.consume(
        replyQueue,
        (message) =>
          message === null ? void ch.close().catch(() => undefined) : this.#onReply(message),
        { noAck: true },
      );
    } catch (error) {
      await ch.close().catch(() => undefined);
      throw mapAmqpError(error, `read the reply queue "${replyQueue}"`);
    }
    this.#channel = ch;
    ch.on("close", () => this.#channelClosed(session, ch));
  }

  /** A channel lost while the connection stays (the queue was deleted): read it again. */
  #channelClosed(session: Session, ch: Channel): void {
    if (this.#channel !== ch) return;
    this.#channel = undefined;
    if (this.#closed || !session.alive) return;
    session.forget(JSON.stringify(this.#options.replyQueue));
    this.#reattach(session);
  }

  #onReply(message: ConsumeMessage): void {
    const meta = parseReply(message, this.#options.logger, this.#options.replyQueue);
    if (!meta) return;
    const json = encodeJson(meta);
    const taskId = meta.task_id;
    this.#cache.delete(taskId);
    this.#cache.set(taskId, json);
    while (this.#cache.size > this.#options.maxCached) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    if (isReadyState(meta.status)) {
      this.#waiters.resolve(taskId, () => decodeJson(json) as ResultMeta);
    }
  }
}
