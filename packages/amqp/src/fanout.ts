import {
  silentLogger,
  type Broadcast,
  type BroadcastDelivery,
  type BroadcastQueue,
  type BroadcastSubscription,
  type ExchangeRef,
  type Logger,
  type WireMessage,
} from "@celery-ts/core";
import type { Channel } from "amqplib";
import {
  createConnectionManager,
  type ConnectionManager,
  type Session,
} from "./internal/connection.ts";
import { closedError } from "./internal/errors.ts";
import { encodeFieldTable } from "./internal/field-table.ts";
import { fromAmqpMessage, toAmqpMessage } from "./internal/message.ts";
import { reattach } from "./internal/reattach.ts";
import { resolveConnection, type ConnectionOptions } from "./internal/options.ts";

export interface AmqpBroadcastOptions extends ConnectionOptions {
  /** @default silentLogger */
  logger?: Logger;
}

interface Subscription {
  exchange: ExchangeRef;
  queue: BroadcastQueue;
  bindingKey: string;
  onMessage: (delivery: BroadcastDelivery) => void;
  /** Set once consuming; gone with the connection (or the channel). */
  channel?: Channel;
  /** The session the subscription is being set up on again, while it is. */
  reattaching?: Session;
}

const PUBLISH_TIMEOUT_MS = 10_000;

const throwClosed = (): never => {
  throw closedError("broadcast");
};

const declareBroadcastExchange = (session: Session, exchange: ExchangeRef): Promise<void> =>
  session.declare(
    `broadcast-exchange:${exchange.name}`,
    `declare the exchange "${exchange.name}"`,
    async (ch) => {
      await ch.assertExchange(exchange.name, exchange.type, {
        durable: exchange.durable ?? false,
        autoDelete: false,
      });
    },
  );

/**
 * Declares the subscription's queue (kombu's expiry and message TTL), binds it and consumes; the
 * channel is the subscription's once consuming (closed if any step fails). `lost` is called if
 * the channel closes while the connection stays.
 */
async function listen(
  session: Session,
  sub: Subscription,
  logger: Logger,
  lost: (channel: Channel) => void = () => undefined,
): Promise<void> {
  await declareBroadcastExchange(session, sub.exchange);
  const channel = await session.channel();
  try {
    await consume(channel, sub, logger);
  } catch (error) {
    await channel.close().catch(() => undefined);
    throw error;
  }
  sub.channel = channel;
  channel.on("close", () => lost(channel));
}

async function consume(channel: Channel, sub: Subscription, logger: Logger): Promise<void> {
  const args: Record<string, unknown> = {};
  if (sub.queue.expires !== undefined) args["x-expires"] = Math.round(sub.queue.expires * 1000);
  if (sub.queue.messageTtl !== undefined) {
    args["x-message-ttl"] = Math.round(sub.queue.messageTtl * 1000);
  }
  await channel.assertQueue(sub.queue.name, {
    durable: false,
    autoDelete: true,
    arguments: encodeFieldTable(args),
  });
  await channel.bindQueue(sub.queue.name, sub.exchange.name, sub.bindingKey);
  await channel.consume(
    sub.queue.name,
    (message) => {
      // null: the server cancelled the consumer (the queue was deleted); closing the channel
      // makes the subscription listen again.
      if (!message) return void channel.close().catch(() => undefined);
      const decoded = fromAmqpMessage(message);
      if (!decoded.message) {
        logger.warn("amqp: dropped an unreadable broadcast message", {
          queue: sub.queue.name,
          error: decoded.error.message,
        });
        return;
      }
      sub.onMessage({ message: decoded.message, routingKey: message.fields.routingKey });
    },
    { noAck: true },
  );
}

/** What a broadcast's subscriptions need to be set up again. */
interface Relistening {
  manager: ConnectionManager;
  logger: Logger;
  subscriptions: Set<Subscription>;
  closed(): boolean;
  /** Aborted by close(). */
  closing: AbortSignal;
}

/**
 * Sets subscriptions up again: after a reconnect, or when a channel closes while the connection
 * stays (the queue was deleted). Retried with the connection's backoff for as long as that
 * connection is up: `reconnectAttempts` bounds reconnecting, and a connection that stays up would
 * bring no reconnect to try again after (remote control would be dead in a healthy-looking
 * worker). After `reconnectAttempts` failures in a row an error is logged; it keeps trying.
 */
function relistening(ctx: Relistening) {
  const { manager, logger, subscriptions } = ctx;
  const relisten = (session: Session, sub: Subscription): void => {
    if (sub.reattaching === session) return;
    sub.reattaching = session;
    reattach({
      policy: manager.retryPolicy,
      logger,
      what: `remote control: listen for broadcasts on "${sub.queue.name}" again`,
      wanted: () => !ctx.closed() && subscriptions.has(sub) && session.alive && !sub.channel,
      attempt: () => listen(session, sub, logger, (channel) => channelLost(session, sub, channel)),
      signal: ctx.closing,
      keepTrying: true,
    })
      .catch((error: unknown) =>
        logger.error("amqp: remote control stopped listening for broadcasts", {
          queue: sub.queue.name,
          error: String(error),
        }),
      )
      .finally(() => {
        if (sub.reattaching === session) delete sub.reattaching;
      });
  };
  const channelLost = (session: Session, sub: Subscription, channel: Channel): void => {
    if (sub.channel !== channel) return;
    delete sub.channel;
    if (!ctx.closed() && subscriptions.has(sub) && session.alive) relisten(session, sub);
  };
  return { relisten, channelLost };
}

/**
 * Remote control and events on RabbitMQ, with the exchanges Celery declares: `celery.pidbox`
 * (fanout), `reply.celery.pidbox` (direct), both transient, and `celeryev` (topic, durable).
 * Subscriptions are transient auto-delete queues with kombu's expiry and message TTL, consumed
 * without acknowledgement (as kombu's pidbox and event receiver do); after a reconnect they
 * are declared and consumed again.
 */
export function createAmqpBroadcast(options: AmqpBroadcastOptions | string = {}): Broadcast {
  const opts: AmqpBroadcastOptions = typeof options === "string" ? { url: options } : options;
  const logger = opts.logger ?? silentLogger;
  const manager = createConnectionManager({
    ...resolveConnection(opts),
    logger,
    what: "remote control",
  });
  const subscriptions = new Set<Subscription>();
  let unsubscribe: (() => void) | undefined;
  let closed = false;
  const closing = new AbortController();

  const ensureOpen = (): void => void (closed && throwClosed());
  const { relisten, channelLost } = relistening({
    manager,
    logger,
    subscriptions,
    closed: () => closed,
    closing: closing.signal,
  });

  const keepListening = (): void => {
    if (unsubscribe) return;
    unsubscribe = manager.subscribe({
      up: (session) => {
        for (const sub of subscriptions) if (!sub.channel) relisten(session, sub);
      },
      down: () => {
        for (const sub of subscriptions) delete sub.channel;
      },
    });
  };

  return {
    name: "amqp",
    async connect() {
      ensureOpen();
      await manager.open();
    },
    async close() {
      if (closed) return;
      closed = true;
      closing.abort();
      unsubscribe?.();
      for (const sub of subscriptions) await sub.channel?.close().catch(() => undefined);
      subscriptions.clear();
      await manager.close();
    },
    async publish(exchange: ExchangeRef, routingKey: string, message: WireMessage) {
      ensureOpen();
      const session = await manager.open();
      await declareBroadcastExchange(session, exchange);
      const { content, options: publishOptions } = toAmqpMessage(message);
      await session.publish({
        exchange: exchange.name,
        routingKey,
        content,
        options: publishOptions,
        what: `publish to the exchange "${exchange.name}"`,
        timeoutMs: PUBLISH_TIMEOUT_MS,
      });
    },
    async subscribe(exchange, queue, bindingKey, onMessage): Promise<BroadcastSubscription> {
      ensureOpen();
      const sub: Subscription = { exchange, queue, bindingKey, onMessage };
      const session = await manager.open();
      await listen(session, sub, logger, (channel) => channelLost(session, sub, channel));
      subscriptions.add(sub);
      keepListening();
      return {
        async close() {
          if (!subscriptions.delete(sub)) return;
          const channel = sub.channel;
          delete sub.channel;
          if (!channel) return;
          await channel.deleteQueue(sub.queue.name).catch(() => undefined);
          await channel.close().catch(() => undefined);
        },
      };
    },
  };
}
