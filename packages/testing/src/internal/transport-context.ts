import { randomUUID } from "node:crypto";
import type { Delivery, DeliveryLimitOptions, Transport } from "@celery-ts/core";
import { afterEach, type TestContext } from "vitest";
import { mutateTransport } from "../mutants.ts";
import type { TransportHarness } from "../transport-suite.ts";
import { Consumer } from "./consumer.ts";

/**
 * The stated margin, in seconds, added to a transport's `capabilities.redeliveryWindow` when the
 * suite proves that something did not happen: long enough for a consumer on a loaded machine to
 * have seen a message that had come back.
 */
export const ABSENCE_MARGIN_SECONDS = 1;
/** The most the suite waits, beyond the redelivery window, for something that must happen. */
export const PRESENCE_WAIT_SECONDS = 10;

/** What each group of the transport suite uses: connections, consumers and the windows. */
export interface TransportSuiteContext {
  harness: TransportHarness;
  /**
   * A new, connected connection to the broker; closed after the test. `create` builds it
   * instead of `harness.create` (for `harness.createWakeOnly`).
   */
  connect(create?: () => Transport | Promise<Transport>): Promise<Transport>;
  /**
   * A new connection on which `connect()` was not called, built by `create`, or by
   * `harness.create` with `options` (dead-letter bounds, message size); closed after the test.
   */
  open(create?: (() => Transport | Promise<Transport>) | DeliveryLimitOptions): Promise<Transport>;
  /** A running consume(); stopped after the test. */
  consume(
    transport: Transport,
    queues: readonly string[],
    prefetch?: number | { readonly prefetch: number },
    onDelivery?: (delivery: Delivery) => void,
  ): Consumer;
  /** Skips the test, with the reason, when the harness declares that its broker breaks `rule`. */
  deviation(rule: string, test: TestContext): void;
  /** A queue name of the test's own. */
  queue(): string;
  /** The absence window of a transport: its redelivery window plus the margin, in ms. */
  absenceMs(transport: Transport): number;
  /** The bound on a wait for something that must happen, in ms. */
  presenceMs(transport: Transport): number;
}

/**
 * Skips the test when the transport keeps no dead letters; with `manage`, also when it cannot
 * replay and purge them yet.
 */
export function requireDeadLetters(
  transport: Transport,
  test: TestContext,
  { manage = false }: { manage?: boolean } = {},
): void {
  if (!transport.capabilities.deadLetter) {
    test.skip("capabilities.deadLetter is false: rejected messages are dropped, not kept");
  }
  if (manage && (!transport.replayDeadLetters || !transport.purgeDeadLetters)) {
    test.skip(`${transport.name} has no replayDeadLetters()/purgeDeadLetters() yet`);
  }
}

/** The declared window, checked: a transport that does not declare one fails every test. */
export function redeliveryWindowOf(transport: Transport): number {
  const window = (transport.capabilities as { redeliveryWindow?: unknown }).redeliveryWindow;
  if (typeof window !== "number" || !Number.isFinite(window) || window < 0) {
    throw new Error(
      `transport "${transport.name}" declares no capabilities.redeliveryWindow (seconds, >= 0); got ${String(window)}`,
    );
  }
  return window;
}

/**
 * How long a test waits to prove that something did not happen on this transport (a message that
 * stays away, nothing more delivered): its declared redelivery window plus
 * {@link ABSENCE_MARGIN_SECONDS}, in ms. A fixed sleep would be too short on a loaded machine.
 */
export function absenceMs(transport: Transport): number {
  return (redeliveryWindowOf(transport) + ABSENCE_MARGIN_SECONDS) * 1000;
}

/** Waits {@link absenceMs} of the transport: after it, what has not happened will not. */
export function waitAbsenceWindow(transport: Transport): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, absenceMs(transport)));
}

/** Builds the context and registers the cleanup of a suite (call inside its describe). */
export function transportSuiteContext(harness: TransportHarness): TransportSuiteContext {
  const transports: Transport[] = [];
  const consumers: Consumer[] = [];

  afterEach(async () => {
    await Promise.allSettled(consumers.splice(0).map((consumer) => consumer.stop()));
    await Promise.allSettled(transports.splice(0).map((transport) => transport.close()));
  });

  const open = async (
    create: (() => Transport | Promise<Transport>) | DeliveryLimitOptions = () => harness.create(),
  ): Promise<Transport> => {
    const transport = mutateTransport(
      await (typeof create === "function" ? create() : harness.create(create)),
    );
    transports.push(transport);
    redeliveryWindowOf(transport);
    return transport;
  };
  return {
    harness,
    open,
    async connect(create) {
      const transport = await open(create);
      await transport.connect();
      return transport;
    },
    consume(transport, queues, prefetch = 10, onDelivery) {
      const consumer = new Consumer(transport, queues, prefetch, onDelivery);
      consumers.push(consumer);
      return consumer;
    },
    deviation(rule, test) {
      const reason = harness.deviations?.[rule];
      if (reason) test.skip(`the harness declares that this broker breaks rule ${rule}: ${reason}`);
    },
    queue: () => `conformance-${randomUUID()}`,
    absenceMs,
    presenceMs: (transport) => (redeliveryWindowOf(transport) + PRESENCE_WAIT_SECONDS) * 1000,
  };
}
