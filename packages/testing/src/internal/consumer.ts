import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  type Delivery,
  type Transport,
  type WireMessage,
} from "@celery-ts/core";

/** A task message for the suites: `task` and `args` are what tests read back. */
export function message(task = "conformance.echo", args: unknown[] = []): WireMessage {
  return encodeTaskMessage(createTaskMessage({ task, args }));
}

/** The task id of a delivered message. */
export function idOf(delivery: Delivery): string {
  if (!delivery.message) throw new Error(`expected a message, got: ${delivery.error.message}`);
  return decodeTaskMessage(delivery.message).headers.id;
}

/** The first argument of a delivered message. */
export function argOf(delivery: Delivery): unknown {
  if (!delivery.message) throw new Error(`expected a message, got: ${delivery.error.message}`);
  return decodeTaskMessage(delivery.message).args[0];
}

/**
 * Waits until `done()` is true, re-checking whenever `subscribe`'s callback fires, at most
 * `timeoutMs`. Resolves with whether it became true: never a fixed sleep.
 */
export function waitUntil(
  done: () => boolean,
  subscribe: (wake: () => void) => () => void,
  timeoutMs: number,
): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (value: boolean): void => {
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    };
    const timer = setTimeout(() => finish(done()), timeoutMs);
    const unsubscribe = subscribe(() => {
      if (done()) finish(true);
    });
  });
}

/** Collects the deliveries of a running `consume()`; waits on them with bounded waits. */
export class Consumer {
  readonly received: Delivery[] = [];
  readonly done: Promise<void>;
  private readonly controller = new AbortController();
  private readonly listeners = new Set<() => void>();

  constructor(
    transport: Transport,
    queues: readonly string[],
    prefetch: number | { readonly prefetch: number },
    onDelivery?: (delivery: Delivery) => void,
  ) {
    const signal = this.controller.signal;
    const options =
      typeof prefetch === "number"
        ? { prefetch, signal }
        : {
            get prefetch() {
              return prefetch.prefetch;
            },
            signal,
          };
    this.done = transport.consume(
      queues,
      (delivery) => {
        this.received.push(delivery);
        onDelivery?.(delivery);
        this.listeners.forEach((wake) => wake());
      },
      options,
    );
    // A consume() that fails is a failure of the test that waits on it, not an unhandled one.
    this.done.catch(() => {});
  }

  private subscribe = (wake: () => void): (() => void) => {
    this.listeners.add(wake);
    return () => this.listeners.delete(wake);
  };

  /** Waits until `count` deliveries arrived, at most `timeoutMs`; throws when they did not. */
  async waitFor(count: number, timeoutMs: number): Promise<Delivery[]> {
    const arrived = await waitUntil(() => this.received.length >= count, this.subscribe, timeoutMs);
    if (!arrived) {
      throw new Error(
        `expected ${count} deliveries within ${timeoutMs} ms, got ${this.received.length}`,
      );
    }
    return this.received.slice(0, count);
  }

  /**
   * Proves that no more than `count` deliveries arrive within `windowMs`: waits the whole
   * window, and returns early (for the test to fail) as soon as one more arrives.
   */
  async expectNoMoreThan(count: number, windowMs: number, what: string): Promise<void> {
    await waitUntil(() => this.received.length > count, this.subscribe, windowMs);
    if (this.received.length > count) {
      const extra = this.received.slice(count).map((d) => (d.message ? idOf(d) : "malformed"));
      throw new Error(
        `${what}: expected ${count} deliveries within ${windowMs} ms, got ${this.received.length} (more: ${extra.join(", ")})`,
      );
    }
  }

  /** Aborts the consume() and waits for it to resolve. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}
