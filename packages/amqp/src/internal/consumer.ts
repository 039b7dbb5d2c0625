import { randomUUID } from "node:crypto";
import { isCeleryTsError, type ConsumeOptions, type Delivery, type Logger } from "@celery-ts/core";
import { backoffDelay, connectionError, Ledger, sleep, toMs } from "@celery-ts/core/driver";
import type { Channel, ConsumeMessage } from "amqplib";
import type { ConnectionManager, Session } from "./connection.ts";
import type { DeadLetterFailures } from "./dead-letter-failures.ts";
import { closedError, mapAmqpError, PKG } from "./errors.ts";
import { DEAD_LETTER_HEADERS, fromAmqpMessage, headerTaskId, sizeChecked } from "./message.ts";
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
  /**
   * Keeps a copy of a rejected message with its reason, and says how long to hold one it could not
   * keep before handing it back; undefined without dead letters.
   */
  deadLetter:
    | {
        keep(
          session: Session,
          queue: string,
          message: ConsumeMessage,
          reason: string,
        ): Promise<void>;
        failures: DeadLetterFailures;
      }
    | undefined;
  /** A message larger than this (bytes) is delivered as an error, undecoded. */
  maxMessageBytes: number;
  isClosed(): boolean;
  /** Lets the transport's close() stop this consumer; returns the unregister function. */
  register(stop: () => void): () => void;
  /** Seconds: the kit's backoff between attempts to consume again. */
  reconnectInitialDelay: number;
  reconnectMaxDelay: number;
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
  /** The kit's settle-once bookkeeping of this channel's outstanding deliveries. */
  readonly ledger: Ledger<Outstanding>;
  /**
   * Deliveries not settled yet, counting those whose settle is under way (the ledger forgets a
   * delivery before its write): the channel must stay open until their acks are through.
   */
  held: number;
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
}

type SettleAction = "ack" | "requeue" | "dead";

/** AMQP's prefetch count is a 16-bit number, and 0 means no limit. */
function clampPrefetch(value: number): number {
  if (!Number.isFinite(value)) return 65_535;
  return Math.min(65_535, Math.max(1, Math.floor(value)));
}

const channelGone = (cause?: unknown) =>
  connectionError(
    PKG,
    "cannot settle the message: the channel it came on closed, so RabbitMQ has put it back " +
      "on its queue and will deliver it again",
    { retryable: false, cause },
  );

async function closeChannel(attachment: Attachment): Promise<void> {
  if (!attachment.alive) return;
  attachment.alive = false;
  await attachment.channel.close().catch(() => undefined);
}

async function setQos(attachment: Attachment, count: number): Promise<void> {
  attachment.qos = { count, global: !attachment.perConsumer };
  await attachment.channel.prefetch(count, !attachment.perConsumer);
}

/**
 * basic.ack and basic.nack have no reply: an ack written just before a close can be lost behind
 * it. A channel processes frames in order, so the reply to a request sent after an ack means the
 * ack was processed. Settles of one tick share one such barrier: basic.qos again with the value
 * already in force, which changes nothing.
 */
function synced(attachment: Attachment): Promise<void> {
  attachment.sync ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
    attachment.sync = undefined;
    const { count, global } = attachment.qos;
    return attachment.channel.prefetch(count, global).then(() => undefined);
  });
  return attachment.sync;
}

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
  if (context.isClosed()) return Promise.reject(closedError("transport"));
  let specs: QueueSpec[];
  try {
    specs = [...new Set(queues)].map((queue) => context.resolve(queue));
  } catch (error) {
    return Promise.reject(error);
  }
  return new AmqpConsumer(context, specs, onDelivery, options).done;
}

/** One `consume()`: its current attachment, and the reattaching after losses. */
class AmqpConsumer {
  readonly done: Promise<void>;
  readonly #context: ConsumerContext;
  readonly #specs: readonly QueueSpec[];
  readonly #onDelivery: (delivery: Delivery) => void;
  readonly #options: ConsumeOptions;
  readonly #hasQuorum: boolean;
  /** A broadcast queue is this consumer's own, as kombu's Broadcast names it: bcast.<uuid>. */
  readonly #actualNames: Map<QueueSpec, string>;
  #stopped = false;
  /** Aborted when the consumer stops: ends the wait before handing back an unkept dead letter. */
  readonly #halt = new AbortController();
  #everAttached = false;
  #current: Attachment | undefined;
  #failures = 0;
  #settle: (error?: unknown) => void = () => {};
  #cleanUp: () => void = () => {};

  constructor(
    context: ConsumerContext,
    specs: readonly QueueSpec[],
    onDelivery: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ) {
    this.#context = context;
    this.#specs = specs;
    this.#onDelivery = onDelivery;
    this.#options = options;
    this.#hasQuorum = specs.some((spec) => spec.type === "quorum");
    this.#actualNames = new Map(
      specs.map((spec) => [spec, spec.broadcast ? `bcast.${randomUUID()}` : spec.name]),
    );
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.#start();
  }

  #start(): void {
    const { signal } = this.#options;
    const unsubscribe = this.#context.manager.subscribe({
      up: (session) => void this.#attach(session),
      down: (session) => {
        if (this.#current?.session !== session) return;
        this.#current.alive = false;
        this.#current = undefined;
      },
      failed: (error) => {
        if (!this.#everAttached && isCeleryTsError(error) && !error.retryable) this.#finish(error);
      },
      gaveUp: (error) => this.#finish(error),
    });
    const unregister = this.#context.register(() => this.#finish());
    const onAbort = (): void => this.#finish();
    this.#cleanUp = () => {
      unsubscribe();
      unregister();
      signal.removeEventListener("abort", onAbort);
    };
    if (signal.aborted) return this.#finish();
    signal.addEventListener("abort", onAbort, { once: true });
  }

  #tellConsuming(): void {
    try {
      this.#options.onConsuming?.();
    } catch (error) {
      this.#context.logger.warn("amqp: the onConsuming callback threw", { error: String(error) });
    }
  }

  #prefetch(): number {
    return clampPrefetch(this.#options.prefetch);
  }

  #finish(error?: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#halt.abort();
    this.#cleanUp();
    const attachment = this.#current;
    if (attachment) {
      if (error === undefined) void this.#stopConsuming(attachment);
      else void closeChannel(attachment);
    }
    this.#settle(error);
  }

  /** Cancels the consumers; the channel stays open until its outstanding deliveries settle. */
  async #stopConsuming(attachment: Attachment): Promise<void> {
    const tags = [...attachment.consumers.keys()];
    attachment.consumers.clear();
    await Promise.all(tags.map((tag) => attachment.channel.cancel(tag).catch(() => undefined)));
    if (attachment.held === 0) await closeChannel(attachment);
  }

  #detach(attachment: Attachment, reason: string): void {
    if (!attachment.alive && this.#current !== attachment) return;
    attachment.alive = false;
    if (this.#current === attachment) this.#current = undefined;
    if (this.#stopped || this.#context.isClosed()) return;
    // The connection may be fine (a channel error, a queue deleted): attach again on it.
    // Otherwise the connection manager calls up() once it has reconnected (and logs the loss).
    void this.#retryAttach(attachment.session, reason);
  }

  async #retryAttach(session: Session, interrupted?: string): Promise<void> {
    this.#failures++;
    const { reconnectInitialDelay: initial, reconnectMaxDelay: max } = this.#context;
    await sleep(toMs(backoffDelay(this.#failures, { initial, max })));
    if (this.#stopped || !session.alive || this.#current) return;
    if (interrupted !== undefined) {
      this.#context.logger.warn(`amqp: consuming interrupted (${interrupted}); resuming`, {
        queues: this.#specs.map((spec) => spec.name),
      });
    }
    await this.#attach(session);
  }

  async #consumeQueue(attachment: Attachment, spec: QueueSpec): Promise<void> {
    const actual = this.#actualNames.get(spec) ?? spec.name;
    const { consumerTag } = await attachment.channel.consume(
      actual,
      (message) => this.#receive(attachment, spec, message),
      { noAck: false },
    );
    attachment.consumers.set(consumerTag, spec);
  }

  #newAttachment(session: Session, channel: Channel): Attachment {
    const perConsumer = this.#hasQuorum || !this.#context.globalQos(session);
    const made: Attachment = {
      session,
      channel,
      id: randomUUID().slice(0, 8),
      consumers: new Map(),
      ledger: new Ledger<Outstanding>({
        pkg: PKG,
        logger: this.#context.logger,
        ensureOpen: () => {
          if (this.#context.isClosed()) throw closedError("transport");
        },
        track: (work) => work,
      }),
      held: 0,
      perConsumer,
      applied: this.#prefetch(),
      paused: false,
      alive: true,
      regenerating: Promise.resolve(),
      qos: { count: 0, global: !perConsumer },
      sync: undefined,
    };
    channel.on("close", () => this.#detach(made, "the channel closed"));
    return made;
  }

  async #attach(session: Session): Promise<void> {
    if (this.#stopped || this.#current?.session === session) return;
    let channel: Channel | undefined;
    let attachment: Attachment | undefined;
    try {
      for (const spec of this.#specs) {
        await this.#context.prepare(session, spec, this.#actualNames.get(spec) ?? spec.name);
      }
      channel = await session.channel();
      attachment = this.#newAttachment(session, channel);
      if (this.#stopped || this.#current) return void (await closeChannel(attachment));
      this.#current = attachment;
      await setQos(attachment, attachment.applied);
      for (const spec of this.#specs) await this.#consumeQueue(attachment, spec);
      this.#failures = 0;
      if (this.#stopped) return void (await this.#stopConsuming(attachment));
      if (!this.#everAttached) {
        // Every queue's basic.consume-ok is in: the consumer is live (start() waits for this).
        this.#everAttached = true;
        this.#tellConsuming();
      }
    } catch (raw) {
      const queues = this.#specs.map((s) => `"${s.name}"`).join(", ");
      const error = mapAmqpError(raw, `consume ${queues}`);
      // A channel the server closed (404) was detached by its close event, which retries.
      const retrying = attachment !== undefined && !attachment.alive;
      // Otherwise detached here, before the close, so that close event does not retry too.
      if (attachment && this.#current === attachment) this.#current = undefined;
      if (attachment) await closeChannel(attachment);
      else await channel?.close().catch(() => undefined);
      if (!error.retryable) return this.#finish(error);
      // A queue deleted between its declaration and basic.consume: declare it again next time.
      for (const spec of this.#specs) session.forget(JSON.stringify(spec.name));
      if (!session.alive) return; // the connection manager logs the loss, and calls up() again
      this.#context.logger.warn("amqp: could not start consuming; retrying", {
        error: error.message,
      });
      if (!retrying) void this.#retryAttach(session);
    }
  }

  #receive(attachment: Attachment, spec: QueueSpec, message: ConsumeMessage | null): void {
    if (message === null) {
      // The server cancelled the consumer: its queue was deleted. Declare it again and resume.
      attachment.session.forget(JSON.stringify(spec.name));
      void closeChannel(attachment).then(() => this.#detach(attachment, "the queue was deleted"));
      return;
    }
    if (this.#stopped || !attachment.alive) {
      // Arrived after the consumer was cancelled: hand it straight back.
      try {
        attachment.channel.nack(message, false, true);
      } catch {
        // The channel is gone: RabbitMQ requeues it anyway.
      }
      return;
    }
    try {
      this.#onDelivery(this.#delivery(attachment, spec, message));
    } catch (error) {
      // A throwing callback ends this consumer; closing the channel hands everything back.
      return this.#finish(error);
    }
    this.#adjust(attachment);
  }

  /** Registers the message with the attachment's ledger and makes its delivery. */
  #delivery(attachment: Attachment, spec: QueueSpec, message: ConsumeMessage): Delivery {
    const entry: Outstanding = { attachment, message, queue: spec.name };
    const tag = `${attachment.id}.${message.fields.deliveryTag}`;
    const { ledger } = attachment;
    attachment.held++;
    ledger.add(tag, entry, () => {
      attachment.held--;
      if (this.#stopped && attachment.held === 0) void closeChannel(attachment);
      else this.#adjust(attachment);
    });
    const strip = this.#context.fromDelayChain(message.fields.exchange) ? DEAD_LETTER_HEADERS : [];
    const decoded =
      sizeChecked(message, this.#context.maxMessageBytes) ?? fromAmqpMessage(message, strip);
    const actions = {
      queue: spec.name,
      deliveryTag: tag,
      redelivered: message.fields.redelivered,
      ack: () => ledger.settle(tag, (held) => this.#write(held, "ack")),
      reject: ({ requeue, reason }: { requeue: boolean; reason?: string }) =>
        ledger.settle(tag, (held) => this.#write(held, requeue ? "requeue" : "dead", reason)),
    };
    if (decoded.message) return { ...actions, message: decoded.message };
    const taskId = headerTaskId(message);
    const { error, raw } = decoded;
    return taskId === undefined ? { ...actions, error, raw } : { ...actions, error, raw, taskId };
  }

  /** The broker write of a settle (the ledger makes it happen once). */
  async #write(entry: Outstanding, action: SettleAction, reason?: string): Promise<void> {
    const { attachment, message } = entry;
    if (!attachment.alive) throw channelGone();
    const { channel } = attachment;
    try {
      if (action === "ack") channel.ack(message);
      else if (action === "requeue") channel.nack(message, false, true);
      else if (this.#context.deadLetter) {
        await this.#keepDeadLetter(this.#context.deadLetter, entry, reason ?? "rejected");
      } else {
        channel.nack(message, false, false);
      }
      await synced(attachment);
    } catch (error) {
      if (!attachment.alive) throw channelGone(error);
      const mapped = mapAmqpError(
        error,
        `${action === "ack" ? "acknowledge" : "reject"} a message`,
      );
      // A delivery tag is good once, on its own channel: a write that failed with a retryable
      // error (its channel going down) is not tried again by the ledger, which would settle the
      // tag twice; RabbitMQ redelivers whatever the closed channel left unsettled.
      throw mapped.retryable ? channelGone(mapped) : mapped;
    }
  }

  /** Keeps a dead letter and acks the message; if it cannot, hands it back after a wait. */
  async #keepDeadLetter(
    dead: NonNullable<ConsumerContext["deadLetter"]>,
    { attachment, message, queue }: Outstanding,
    reason: string,
  ): Promise<void> {
    try {
      await dead.keep(attachment.session, queue, message, reason);
    } catch (error) {
      // Not kept: put it back rather than lose it, but not at once (a hot redelivery loop).
      await sleep(dead.failures.failed(queue, headerTaskId(message), error), this.#halt.signal);
      if (!attachment.alive) throw error;
      attachment.channel.nack(message, false, true);
      // Settled so: not to be tried again (the ledger retries retryable failures, and this
      // delivery tag is spent).
      throw connectionError(
        PKG,
        `could not dead-letter the message (${(error as Error)?.message ?? String(error)}); ` +
          "it was put back on its queue instead",
        { retryable: false, cause: error },
      );
    }
    dead.failures.kept(queue);
    attachment.channel.ack(message);
  }

  /** Applies a changed prefetch: basic.qos (global), or new consumers (per consumer). */
  #adjust(attachment: Attachment): void {
    if (!attachment.alive || this.#stopped || attachment !== this.#current) return;
    const wanted = this.#prefetch();
    if (!attachment.perConsumer) {
      if (wanted === attachment.applied) return;
      attachment.applied = wanted;
      setQos(attachment, wanted).catch((error: unknown) => {
        this.#context.logger.debug("amqp: could not change the prefetch", { error: String(error) });
      });
      return;
    }
    const room = wanted - attachment.held;
    if (wanted === attachment.applied && !(attachment.paused && room > 0)) return;
    attachment.applied = wanted;
    attachment.regenerating = attachment.regenerating
      .then(() => this.#regenerate(attachment))
      .catch((error: unknown) => {
        this.#context.logger.debug("amqp: could not renew the consumers", {
          error: String(error),
        });
      });
  }

  /** Per-consumer QoS: cancels the consumers and makes them again with the room left. */
  async #regenerate(attachment: Attachment): Promise<void> {
    if (!attachment.alive || this.#stopped) return;
    const tags = [...attachment.consumers.keys()];
    attachment.consumers.clear();
    for (const tag of tags) await attachment.channel.cancel(tag);
    const credit = this.#prefetch() - attachment.held;
    attachment.applied = this.#prefetch();
    attachment.paused = credit <= 0;
    if (attachment.paused) return;
    await setQos(attachment, credit);
    for (const spec of this.#specs) await this.#consumeQueue(attachment, spec);
  }
}
