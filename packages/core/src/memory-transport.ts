import { randomUUID } from "node:crypto";
import { decodeEnvelope, encodeEnvelope } from "./envelope.ts";
import { CeleryTsError } from "./errors.ts";
import type { WireMessage } from "./task-message.ts";
import type {
  ConsumeOptions,
  DeadLetter,
  Delivery,
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
  private readonly waiting = new Map<string, StoredMessage[]>();
  private readonly dead = new Map<string, DeadLetter[]>();
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

  deadLetter(letter: DeadLetter): void {
    const list = this.dead.get(letter.queue) ?? [];
    list.push(letter);
    this.dead.set(letter.queue, list);
  }

  deadLetters(queue: string): DeadLetter[] {
    return [...(this.dead.get(queue) ?? [])];
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface MemoryTransportOptions {
  /** Share one broker between several transports (connections). @default a new broker */
  broker?: MemoryBroker;
}

const CAPABILITIES: TransportCapabilities = {
  delayedDelivery: "native",
  priority: "higher-first",
  deadLetter: true,
  redelivery: "on-disconnect",
};

/** An in-process transport for unit tests: the reference behaviour of the conformance suite. */
export function createMemoryTransport(options: MemoryTransportOptions = {}): Transport {
  const broker = options.broker ?? new MemoryBroker();
  const unacked = new Map<string, StoredMessage>();
  const stopConsumers = new Set<() => void>();
  let closed = false;

  const ensureOpen = (): void => {
    if (closed) throw new CeleryTsError("CLOSED", "the transport is closed", { pkg: "memory" });
  };

  return {
    name: "memory",
    capabilities: CAPABILITIES,
    async connect() {
      ensureOpen();
    },
    async close() {
      if (closed) return;
      closed = true;
      stopConsumers.forEach((stop) => stop());
      for (const message of unacked.values()) broker.requeue({ ...message, redelivered: true });
      unacked.clear();
    },
    async publish(message: WireMessage, publish: PublishOptions) {
      ensureOpen();
      const priority = publish.priority ?? 0;
      const raw = encodeEnvelope(message, {
        exchange: "",
        routingKey: publish.queue,
        priority,
        deliveryTag: randomUUID(),
      });
      broker.push(publish.queue, raw, priority, publish.availableAt ?? 0);
    },
    consume(queues, onDelivery, options: ConsumeOptions) {
      const { signal } = options;
      ensureOpen();
      return new Promise<void>((resolve) => {
        let outstanding = 0;
        let timer: NodeJS.Timeout | undefined;
        const stop = (): void => {
          unsubscribe();
          clearTimeout(timer);
          stopConsumers.delete(stop);
          resolve();
        };
        const settle = (tag: string): StoredMessage | undefined => {
          ensureOpen();
          const message = unacked.get(tag);
          if (message) {
            unacked.delete(tag);
            outstanding--;
            queueMicrotask(pump);
          }
          return message;
        };
        const deliver = (stored: StoredMessage): void => {
          const deliveryTag = randomUUID();
          unacked.set(deliveryTag, stored);
          outstanding++;
          const actions = {
            queue: stored.queue,
            deliveryTag,
            redelivered: stored.redelivered,
            async ack() {
              settle(deliveryTag);
            },
            async reject({ requeue, reason }: { requeue: boolean; reason?: string }) {
              const message = settle(deliveryTag);
              if (!message) return;
              if (requeue) broker.requeue({ ...message, redelivered: true });
              else {
                broker.deadLetter({
                  queue: message.queue,
                  raw: message.raw,
                  reason: reason ?? "rejected",
                  rejectedAt: Date.now(),
                });
              }
            },
          };
          let delivery: Delivery;
          try {
            delivery = { ...actions, message: decodeEnvelope(stored.raw).message };
          } catch (error) {
            delivery = { ...actions, error: error as CeleryTsError, raw: stored.raw };
          }
          onDelivery(delivery);
        };
        const pump = (): void => {
          if (signal.aborted || closed) return;
          const now = Date.now();
          while (outstanding < options.prefetch) {
            const message = broker.take(queues, now);
            if (!message) break;
            deliver(message);
          }
          clearTimeout(timer);
          const dueAt = broker.nextDueAt(queues);
          if (dueAt !== undefined && dueAt > now) timer = setTimeout(pump, dueAt - now);
        };
        const unsubscribe = broker.subscribe(pump);
        stopConsumers.add(stop);
        if (signal.aborted) return stop();
        signal.addEventListener("abort", stop, { once: true });
        pump();
      });
    },
    async purge(queue) {
      ensureOpen();
      return broker.purge(queue);
    },
    async deadLetters(queue, { limit = Infinity } = {}) {
      return broker.deadLetters(queue).slice(0, limit);
    },
  };
}
