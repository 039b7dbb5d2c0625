import { randomUUID } from "node:crypto";
import { createConsumerKit } from "./driver/consumer-kit.ts";
import type { DriverPrimitives, TakenMessage } from "./driver/primitives.ts";
import { encodeEnvelope } from "./envelope.ts";
import { MemoryExchanges, createMemoryBroadcast } from "./memory-broadcast.ts";
import type { WireMessage } from "./task-message.ts";
import {
  DEFAULT_DEAD_LETTER_LIMITS,
  deliveryLimits,
  notKeptReason,
  taskIdOf,
  withDeadLetters,
  type DeadLetterLimits,
  type DeliveryLimitOptions,
} from "./driver/dead-letters.ts";
import type {
  DeadLetter,
  DeadLetterSelection,
  PublishOptions,
  Transport,
  TransportCapabilities,
} from "./transport.ts";

interface StoredMessage {
  seq: number;
  queue: string;
  raw: string;
  priority: number;
  availableAt: number;
  redelivered: boolean;
}

/**
 * The state behind in-memory transports: one per simulated broker. Each `createMemoryTransport()`
 * on the same broker is a separate connection, as processes are on a real one.
 */
export class MemoryBroker {
  /** The exchanges of remote control and events on this broker. */
  readonly exchanges = new MemoryExchanges();
  private readonly waiting = new Map<string, StoredMessage[]>();
  private readonly dead = new Map<string, DeadLetter[]>();
  private readonly deadBytes = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private seq = 0;

  /** Puts a message (a kombu envelope, malformed or not) on a queue. */
  push(queue: string, raw: string, priority = 0, availableAt = 0): void {
    this.requeue({ seq: this.seq++, queue, raw, priority, availableAt, redelivered: false });
  }

  requeue(message: StoredMessage): void {
    const list = this.waiting.get(message.queue) ?? [];
    list.push(message);
    this.waiting.set(message.queue, list);
    // Deliver on a later tick: a publisher never runs consumer code in its own call stack.
    queueMicrotask(() => this.listeners.forEach((listener) => listener()));
  }

  /** Takes the due message with the highest priority, then the oldest, across `queues`. */
  take(queues: readonly string[], now: number): StoredMessage | undefined {
    let best: { list: StoredMessage[]; index: number } | undefined;
    for (const queue of queues) {
      const list = this.waiting.get(queue) ?? [];
      list.forEach((message, index) => {
        if (message.availableAt > now) return;
        const current = best?.list[best.index];
        if (
          !current ||
          message.priority > current.priority ||
          (message.priority === current.priority && message.seq < current.seq)
        ) {
          best = { list, index };
        }
      });
    }
    return best?.list.splice(best.index, 1)[0];
  }

  /** When the next delayed message on `queues` becomes due, if any. */
  nextDueAt(queues: readonly string[]): number | undefined {
    let next: number | undefined;
    for (const queue of queues) {
      for (const message of this.waiting.get(queue) ?? []) {
        if (next === undefined || message.availableAt < next) next = message.availableAt;
      }
    }
    return next;
  }

  purge(queue: string): number {
    const count = this.waiting.get(queue)?.length ?? 0;
    this.waiting.delete(queue);
    return count;
  }

  /** Keeps a dead letter, then drops the oldest of its queue beyond `limits`. */
  deadLetter(letter: DeadLetter, limits: DeadLetterLimits = DEFAULT_DEAD_LETTER_LIMITS): void {
    const bytes = Buffer.byteLength(letter.raw);
    const kept =
      bytes > limits.maxBytes
        ? { ...letter, raw: "", reason: notKeptReason(letter.reason, bytes, limits.maxBytes) }
        : letter;
    const list = this.dead.get(letter.queue) ?? [];
    list.push(kept);
    const oldest = Date.now() - limits.maxAge * 1000;
    let total = (this.deadBytes.get(letter.queue) ?? 0) + Buffer.byteLength(kept.raw);
    while (
      list.length > 0 &&
      (list.length > limits.maxCount || total > limits.maxBytes || list[0]!.rejectedAt < oldest)
    ) {
      total -= Buffer.byteLength(list.shift()!.raw);
    }
    this.deadBytes.set(letter.queue, total);
    this.dead.set(letter.queue, list);
  }

  deadLetters(queue: string): DeadLetter[] {
    return [...(this.dead.get(queue) ?? [])];
  }

  /** Removes and returns the dead letters of `queue` that `selection` picks, oldest first. */
  takeDeadLetters(
    queue: string,
    { taskId, limit = Infinity }: DeadLetterSelection,
    replayable = false,
  ): DeadLetter[] {
    const taken: DeadLetter[] = [];
    const kept = (this.dead.get(queue) ?? []).filter((letter) => {
      const picked =
        taken.length < limit &&
        (taskId === undefined || letter.taskId === taskId) &&
        (!replayable || letter.raw !== "");
      if (picked) taken.push(letter);
      return !picked;
    });
    this.dead.set(queue, kept);
    this.deadBytes.set(
      queue,
      kept.reduce((sum, l) => sum + Buffer.byteLength(l.raw), 0),
    );
    return taken;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface MemoryTransportOptions extends DeliveryLimitOptions {
  /** Share one broker between several transports (connections). @default a new broker */
  broker?: MemoryBroker;
}

/** The in-memory broker's primitives, for the driver kit: a handle is the stored message. Internal (the kit's tests wrap it). */
export function memoryPrimitives(
  broker: MemoryBroker,
  limits: DeadLetterLimits | undefined = DEFAULT_DEAD_LETTER_LIMITS,
): DriverPrimitives<StoredMessage> {
  return {
    open: (queues) => ({
      async take({ max }) {
        const now = Date.now();
        const messages: TakenMessage<StoredMessage>[] = [];
        for (let message = broker.take(queues, now); message; message = broker.take(queues, now)) {
          const { queue, raw, redelivered } = message;
          messages.push({ handle: message, queue, raw, redelivered });
          if (messages.length >= max) break;
        }
        const dueAt = broker.nextDueAt(queues);
        return dueAt !== undefined && dueAt > now
          ? { messages, lookAgainIn: (dueAt - now) / 1000 }
          : { messages };
      },
      subscribe: (wake) => broker.subscribe(wake),
    }),
    async ack() {},
    async requeue(message) {
      broker.requeue({ ...message, redelivered: true });
    },
    async deadLetter({ queue, raw }, reason) {
      if (!limits) return;
      const taskId = taskIdOf(raw);
      const letter = { queue, raw, reason, rejectedAt: Date.now() };
      broker.deadLetter(taskId === undefined ? letter : { ...letter, taskId }, limits);
    },
  };
}

/**
 * An in-process transport for unit tests: the reference behaviour of the conformance suite, and
 * the smallest driver on the kit (`@celery-ts/core/driver`).
 */
export function createMemoryTransport(options: MemoryTransportOptions = {}): Transport {
  const broker = options.broker ?? new MemoryBroker();
  const limits = deliveryLimits("memory", options);
  const kit = createConsumerKit({
    pkg: "memory",
    what: "memory transport",
    primitives: memoryPrimitives(broker, limits.deadLetters),
    maxMessageBytes: limits.maxMessageBytes,
  });
  const capabilities: TransportCapabilities = {
    delayedDelivery: "native",
    priority: "higher-first",
    deadLetter: limits.deadLetters !== undefined,
    redelivery: "on-disconnect",
    redeliveryWindow: 0,
    reportsConsuming: true,
  };

  const transport: Transport = {
    name: "memory",
    capabilities,
    broadcast: () => createMemoryBroadcast(broker.exchanges),
    async connect() {
      kit.ensureOpen();
    },
    async close() {
      // Forced or not, the broker sees the connection go and puts its messages back at once.
      await kit.close();
    },
    async publish(message: WireMessage, publish: PublishOptions) {
      kit.ensureOpen();
      const priority = publish.priority ?? 0;
      const raw = encodeEnvelope(message, {
        exchange: "",
        routingKey: publish.queue,
        priority,
        deliveryTag: randomUUID(),
      });
      broker.push(publish.queue, raw, priority, publish.availableAt ?? 0);
    },
    consume: kit.consume,
    async purge(queue) {
      kit.ensureOpen();
      return broker.purge(queue);
    },
  };
  return withDeadLetters(
    transport,
    kit.ensureOpen,
    limits.deadLetters && {
      list: async (queue, limit) => broker.deadLetters(queue).slice(0, limit ?? Infinity),
      async replay(queue, selection) {
        const letters = broker.takeDeadLetters(queue, selection, true);
        for (const letter of letters) broker.push(queue, letter.raw);
        return letters.length;
      },
      purge: async (queue, selection) => broker.takeDeadLetters(queue, selection).length,
    },
  );
}
