import { randomUUID } from "node:crypto";
import { isCeleryTsError, type ConsumeOptions, type Delivery, type Logger } from "@celery-ts/core";
import type { Channel, ConsumeMessage } from "amqplib";
import type { ConnectionManager, Session } from "./connection.ts";
import { closedError, connectionError, mapAmqpError } from "./errors.ts";
import { DEAD_LETTER_HEADERS, fromAmqpMessage } from "./message.ts";
import type { QueueSpec } from "./topology.ts";

/** What a consumer needs from its transport. */
export interface ConsumerContext {
  manager: ConnectionManager;
  logger: Logger;
  resolve(queue: string): QueueSpec;
  /** Declares what consuming `spec` from the queue `actualName` needs. */
  prepare(session: Session, spec: QueueSpec, actualName: string): Promise<void>;
  /** Whether a message came out of the delay chain: it then loses RabbitMQ's x-death headers. */
  fromDelayChain(exchange: string): boolean;
  /** Keeps a copy of a rejected message with its reason; undefined without a dead-letter exchange. */
  deadLetter:
    | ((session: Session, queue: string, message: ConsumeMessage, reason: string) => Promise<void>)
    | undefined;
  isClosed(): boolean;
  /** Lets the transport's close() stop this consumer; returns the unregister function. */
  register(stop: () => void): () => void;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  /** Whether to use one global basic.qos per channel on this connection's server. */
  globalQos(session: Session): boolean;
}

/** One channel's worth of consuming, on one session; replaced after a channel or connection loss. */
interface Attachment {
  readonly session: Session;
  readonly channel: Channel;
  /** Makes delivery tags unique across channels (AMQP numbers them per channel from 1). */
  readonly id: string;
  readonly consumers: Map<string, QueueSpec>;
  readonly outstanding: Set<Outstanding>;
  /** Per-consumer QoS (quorum queues, RabbitMQ 4.3+) rather than one global limit. */
  readonly perConsumer: boolean;
  /** The prefetch in force: basic.qos's, or (per consumer) the one the consumers were made for. */
  applied: number;
  /** Per-consumer mode: no consumers, because outstanding deliveries fill the prefetch. */
  paused: boolean;
  alive: boolean;
  regenerating: Promise<void>;
  /** The basic.qos last sent on the channel, sent again as a barrier (see `synced`). */
  qos: { count: number; global: boolean };
  /** The barrier that settles (acks, nacks) of this tick wait on. */
  sync: Promise<void> | undefined;
}

interface Outstanding {
  readonly attachment: Attachment;
  readonly message: ConsumeMessage;
  /** The queue's name as the consumer asked for it (a broadcast queue's exchange name). */
  readonly queue: string;
  settled: boolean;
}

/** AMQP's prefetch count is a 16-bit number, and 0 means no limit. */
function clampPrefetch(value: number): number {
  if (!Number.isFinite(value)) return 65_535;
  return Math.min(65_535, Math.max(1, Math.floor(value)));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Consumes `queues` on one channel until the signal aborts. The prefetch is read again after each
 * delivery and each settle. Where the server allows it, it is basic.qos with global=true: one
 * limit for the whole channel, so for all of the queues together, and RabbitMQ applies a change
 * at once. Quorum queues refuse global QoS, and RabbitMQ 4.3 refuses it by default (a deprecated
 * feature); a per-consumer limit does not change for a running consumer, so there the consumers
 * are cancelled and made again when the prefetch changes, each with the room left (the limit then
 * applies per queue, as in kombu).
 */
export function runConsumer(
  context: ConsumerContext,
  queues: readonly string[],
  onDelivery: (delivery: Delivery) => void,
  options: ConsumeOptions,
): Promise<void> {
  const { signal } = options;
  const { logger } = context;
  if (context.isClosed()) return Promise.reject(closedError("transport"));
  let specs: QueueSpec[];
  try {
    specs = [...new Set(queues)].map((queue) => context.resolve(queue));
  } catch (error) {
    return Promise.reject(error);
  }
  const hasQuorum = specs.some((spec) => spec.type === "quorum");
  // A broadcast queue is this consumer's own, as kombu's Broadcast names it: bcast.<uuid>.
  const actualNames = new Map(
    specs.map((spec) => [spec, spec.broadcast ? `bcast.${randomUUID()}` : spec.name]),
  );

  return new Promise<void>((resolve, reject) => {
    let stopped = false;
    let everAttached = false;
    let current: Attachment | undefined;
    let retryDelay = context.reconnectInitialDelayMs;

    const prefetch = (): number => clampPrefetch(options.prefetch);

    const setQos = async (attachment: Attachment, count: number): Promise<void> => {
      attachment.qos = { count, global: !attachment.perConsumer };
      await attachment.channel.prefetch(count, !attachment.perConsumer);
    };

    /**
     * basic.ack and basic.nack have no reply: an ack written just before a close can be lost
     * behind it. A channel processes frames in order, so the reply to a request sent after an
     * ack means the ack was processed. Settles of one tick share one such barrier: basic.qos
     * again with the value already in force, which changes nothing.
     */
    const synced = (attachment: Attachment): Promise<void> => {
      attachment.sync ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        attachment.sync = undefined;
        const { count, global } = attachment.qos;
        return attachment.channel.prefetch(count, global).then(() => undefined);
      });
      return attachment.sync;
    };

    const finish = (error?: unknown): void => {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      unregister();
      signal.removeEventListener("abort", onAbort);
      const attachment = current;
      if (attachment) {
        if (error === undefined) void stopConsuming(attachment);
        else void closeChannel(attachment);
      }
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => finish();

    /** Cancels the consumers; the channel stays open until its outstanding deliveries settle. */
    const stopConsuming = async (attachment: Attachment): Promise<void> => {
      const tags = [...attachment.consumers.keys()];
      attachment.consumers.clear();
      await Promise.all(tags.map((tag) => attachment.channel.cancel(tag).catch(() => undefined)));
      if (attachment.outstanding.size === 0) await closeChannel(attachment);
    };

    const closeChannel = async (attachment: Attachment): Promise<void> => {
      if (!attachment.alive) return;
      attachment.alive = false;
      await attachment.channel.close().catch(() => undefined);
    };

    const detach = (attachment: Attachment, reason: string): void => {
      if (!attachment.alive && current !== attachment) return;
      attachment.alive = false;
      if (current === attachment) current = undefined;
      if (stopped || context.isClosed()) return;
      logger.warn(`amqp: consuming interrupted (${reason}); resuming`, {
        queues: specs.map((spec) => spec.name),
      });
      // The connection may be fine (a channel error, a queue deleted): attach again on it.
      // Otherwise the connection manager calls up() once it has reconnected.
      void retryAttach(attachment.session);
    };

    const retryAttach = async (session: Session): Promise<void> => {
      await sleep(retryDelay * (0.8 + 0.4 * Math.random()));
      retryDelay = Math.min(retryDelay * 2, context.reconnectMaxDelayMs);
      if (!stopped && session.alive && !current) await attach(session);
    };

    const consumeQueue = async (attachment: Attachment, spec: QueueSpec): Promise<void> => {
      const actual = actualNames.get(spec) ?? spec.name;
      const { consumerTag } = await attachment.channel.consume(
        actual,
        (message) => receive(attachment, spec, message),
        { noAck: false },
      );
      attachment.consumers.set(consumerTag, spec);
    };

    const attach = async (session: Session): Promise<void> => {
      if (stopped || current?.session === session) return;
      let channel: Channel | undefined;
      let attachment: Attachment | undefined;
      try {
        for (const spec of specs) {
          await context.prepare(session, spec, actualNames.get(spec) ?? spec.name);
        }
        channel = await session.channel();
        const perConsumer = hasQuorum || !context.globalQos(session);
        const made: Attachment = {
          session,
          channel,
          id: randomUUID().slice(0, 8),
          consumers: new Map(),
          outstanding: new Set(),
          perConsumer,
          applied: prefetch(),
          paused: false,
          alive: true,
          regenerating: Promise.resolve(),
          qos: { count: 0, global: !perConsumer },
          sync: undefined,
        };
        attachment = made;
        channel.on("close", () => detach(made, "the channel closed"));
        if (stopped || current) {
          await closeChannel(made);
          return;
        }
        current = made;
        await setQos(made, made.applied);
        for (const spec of specs) await consumeQueue(made, spec);
        everAttached = true;
        retryDelay = context.reconnectInitialDelayMs;
        if (stopped) await stopConsuming(made);
      } catch (raw) {
        const error = mapAmqpError(raw, `consume ${specs.map((s) => `"${s.name}"`).join(", ")}`);
        if (attachment) await closeChannel(attachment);
        else await channel?.close().catch(() => undefined);
        if (attachment && current === attachment) current = undefined;
        if (!error.retryable) {
          finish(error);
          return;
        }
        logger.warn("amqp: could not start consuming; retrying", { error: error.message });
        if (session.alive) void retryAttach(session);
      }
    };

    const receive = (
      attachment: Attachment,
      spec: QueueSpec,
      message: ConsumeMessage | null,
    ): void => {
      if (message === null) {
        // The server cancelled the consumer: its queue was deleted. Declare it again and resume.
        attachment.session.forget(JSON.stringify(spec.name));
        void closeChannel(attachment).then(() => detach(attachment, "the queue was deleted"));
        return;
      }
      if (stopped || !attachment.alive) {
        // Arrived after the consumer was cancelled: hand it straight back.
        try {
          attachment.channel.nack(message, false, true);
        } catch {
          // The channel is gone: RabbitMQ requeues it anyway.
        }
        return;
      }
      const entry: Outstanding = { attachment, message, queue: spec.name, settled: false };
      attachment.outstanding.add(entry);
      const strip = context.fromDelayChain(message.fields.exchange) ? DEAD_LETTER_HEADERS : [];
      const decoded = fromAmqpMessage(message, strip);
      const actions = {
        queue: spec.name,
        deliveryTag: `${attachment.id}.${message.fields.deliveryTag}`,
        redelivered: message.fields.redelivered,
        ack: () => settle(entry, "ack"),
        reject: ({ requeue, reason }: { requeue: boolean; reason?: string }) =>
          settle(entry, requeue ? "requeue" : "dead", reason),
      };
      const delivery: Delivery = decoded.message
        ? { ...actions, message: decoded.message }
        : { ...actions, error: decoded.error, raw: decoded.raw };
      try {
        onDelivery(delivery);
      } catch (error) {
        // A throwing callback ends this consumer; closing the channel hands everything back.
        finish(error);
        return;
      }
      adjust(attachment);
    };

    const settle = async (
      entry: Outstanding,
      action: "ack" | "requeue" | "dead",
      reason?: string,
    ): Promise<void> => {
      if (context.isClosed()) throw closedError("transport");
      if (entry.settled) return;
      entry.settled = true;
      const { attachment, message } = entry;
      const done = (): void => {
        attachment.outstanding.delete(entry);
        if (stopped && attachment.outstanding.size === 0) void closeChannel(attachment);
        else adjust(attachment);
      };
      const channelGone = (cause?: unknown) =>
        connectionError(
          "cannot settle the message: the channel it came on closed, so RabbitMQ has put it back " +
            "on its queue and will deliver it again",
          { retryable: false, cause },
        );
      if (!attachment.alive) {
        attachment.outstanding.delete(entry);
        throw channelGone();
      }
      try {
        if (action === "ack") attachment.channel.ack(message);
        else if (action === "requeue") attachment.channel.nack(message, false, true);
        else if (context.deadLetter) {
          try {
            await context.deadLetter(
              attachment.session,
              entry.queue,
              message,
              reason ?? "rejected",
            );
          } catch (error) {
            // Not kept: put it back rather than lose it.
            if (attachment.alive) attachment.channel.nack(message, false, true);
            throw error;
          }
          attachment.channel.ack(message);
        } else {
          attachment.channel.nack(message, false, false);
        }
        await synced(attachment);
      } catch (error) {
        if (!attachment.alive) throw channelGone(error);
        throw mapAmqpError(error, `${action === "ack" ? "acknowledge" : "reject"} a message`);
      } finally {
        done();
      }
    };

    /** Applies a changed prefetch: basic.qos (global), or new consumers (per consumer). */
    const adjust = (attachment: Attachment): void => {
      if (!attachment.alive || stopped || attachment !== current) return;
      const wanted = prefetch();
      if (!attachment.perConsumer) {
        if (wanted === attachment.applied) return;
        attachment.applied = wanted;
        setQos(attachment, wanted).catch((error: unknown) => {
          logger.debug("amqp: could not change the prefetch", { error: String(error) });
        });
        return;
      }
      const room = wanted - attachment.outstanding.size;
      if (wanted === attachment.applied && !(attachment.paused && room > 0)) return;
      attachment.applied = wanted;
      const regenerate = async (): Promise<void> => {
        if (!attachment.alive || stopped) return;
        const tags = [...attachment.consumers];
        attachment.consumers.clear();
        for (const [tag] of tags) await attachment.channel.cancel(tag);
        const credit = prefetch() - attachment.outstanding.size;
        attachment.applied = prefetch();
        attachment.paused = credit <= 0;
        if (attachment.paused) return;
        await setQos(attachment, credit);
        for (const spec of specs) await consumeQueue(attachment, spec);
      };
      attachment.regenerating = attachment.regenerating.then(regenerate).catch((error: unknown) => {
        logger.debug("amqp: could not renew the consumers", { error: String(error) });
      });
    };

    const unsubscribe = context.manager.subscribe({
      up: (session) => void attach(session),
      down: (session) => {
        if (current?.session === session) {
          const attachment = current;
          attachment.alive = false;
          current = undefined;
        }
      },
      failed: (error) => {
        if (!everAttached && isCeleryTsError(error) && !error.retryable) finish(error);
      },
    });
    const unregister = context.register(() => finish());
    if (signal.aborted) return finish();
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
