import type { AnyTaskDefinition, ResultBackend, Transport } from "@celery-ts/core";
import { describe } from "vitest";
import { workerSuiteContext } from "./internal/worker-context.ts";
import { workerDeliveryTests } from "./internal/worker-delivery.ts";
import { workerTaskTests } from "./internal/worker-tasks.ts";

/** The options the suite gives `createWorker()` (a subset of `@celery-ts/worker`'s). */
export interface SuiteWorkerOptions {
  broker: Transport;
  backend: ResultBackend;
  tasks: AnyTaskDefinition[];
  queues: string[];
  concurrency?: number;
  prefetch?: number;
  shutdownTimeout?: number;
}

/** What the suite needs of a worker. */
export interface SuiteWorker {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** How the worker suite reaches one transport and result backend. */
export interface WorkerHarness {
  /**
   * `createWorker` from `@celery-ts/worker`. Passed in, so that this package does not depend on
   * the worker (whose own tests use it).
   */
  createWorker(options: SuiteWorkerOptions): SuiteWorker;
  /** A new connection to the broker (the same broker every time). */
  createTransport(): Transport | Promise<Transport>;
  /** A result backend for one test; the suite closes it after the test. */
  createBackend(): ResultBackend | Promise<ResultBackend>;
  /** Puts raw text on a queue as a foreign or broken producer would. */
  injectRaw(queue: string, raw: string): Promise<void>;
  /** Per-test timeout, in seconds. @default 60 */
  testTimeoutSeconds?: number;
}

/**
 * The worker's behaviour on one transport and backend: every driver package runs it, so that
 * what the worker relies on (acknowledging after the result, redelivery, leases, dead letters)
 * is checked on each broker.
 */
export function workerConformance(name: string, harness: WorkerHarness): void {
  describe(
    `Worker conformance: ${name}`,
    { timeout: (harness.testTimeoutSeconds ?? 60) * 1000 },
    () => {
      const ctx = workerSuiteContext(harness);
      workerTaskTests(ctx);
      workerDeliveryTests(ctx);
    },
  );
}
