import { randomUUID } from "node:crypto";
import {
  createTaskMessage,
  encodeTaskMessage,
  type AnyTaskDefinition,
  type ResultBackend,
  type ResultMeta,
  type TaskMessageInput,
  type Transport,
} from "@celery-ts/core";
import { afterEach, beforeEach } from "vitest";
import { mutateTransport } from "../mutants.ts";
import type { SuiteWorker, SuiteWorkerOptions, WorkerHarness } from "../worker-suite.ts";
import { absenceMs, PRESENCE_WAIT_SECONDS, redeliveryWindowOf } from "./transport-context.ts";

/** A running worker with its own broker connection, on the test's queue. */
export interface Fixture {
  worker: SuiteWorker;
  /** The worker's broker connection (the worker does not close what it was given). */
  broker: Transport;
  /** Sends a task to the test's queue through the test's producer connection. */
  send(input: TaskMessageInput): Promise<string>;
  /** The task's ready result, waited for with a bounded wait. */
  wait(id: string): Promise<ResultMeta>;
}

/** What each worker test uses. */
export interface WorkerSuiteContext {
  harness: WorkerHarness;
  queue(): string;
  producer(): Transport;
  backend(): ResultBackend;
  start(tasks: AnyTaskDefinition[], options?: Partial<SuiteWorkerOptions>): Promise<Fixture>;
  /** The transport's redelivery window plus the margin, in ms: how long absence is awaited. */
  absenceMs(): number;
  /** The bound on a wait for something that must happen, in ms. */
  presenceMs(): number;
  /** Waits until `done()` holds, checking every 20 ms, at most `presenceMs()`; throws if not. */
  until(done: () => boolean | Promise<boolean>, what: string): Promise<void>;
}

export function workerSuiteContext(harness: WorkerHarness): WorkerSuiteContext {
  let queue = "";
  let producer: Transport | undefined;
  let backend: ResultBackend | undefined;
  const workers: SuiteWorker[] = [];
  const transports: Transport[] = [];

  const connect = async (): Promise<Transport> => {
    const transport = mutateTransport(await harness.createTransport());
    transports.push(transport);
    return transport;
  };
  beforeEach(async () => {
    queue = `worker-conformance-${randomUUID()}`;
    producer = await connect();
    backend = await harness.createBackend();
  });
  afterEach(async () => {
    await Promise.allSettled(workers.splice(0).map((worker) => worker.stop()));
    await Promise.allSettled(transports.splice(0).map((transport) => transport.close()));
    await backend?.close();
  });

  const ctx: WorkerSuiteContext = {
    harness,
    queue: () => queue,
    producer: () => producer!,
    backend: () => backend!,
    absenceMs: () => absenceMs(producer!),
    presenceMs: () => (redeliveryWindowOf(producer!) + PRESENCE_WAIT_SECONDS) * 1000,
    async until(done, what) {
      let ok = await done();
      const deadline = Date.now() + ctx.presenceMs();
      while (!ok && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20)); // the poll interval
        ok = await done();
      }
      if (!ok) throw new Error(`${what}: not within ${ctx.presenceMs()} ms`);
    },
    async start(tasks, options = {}) {
      const broker = await connect();
      const worker = harness.createWorker({
        broker,
        backend: backend!,
        tasks,
        queues: [queue],
        shutdownTimeout: 5,
        ...options,
      });
      workers.push(worker);
      await worker.start();
      return {
        worker,
        broker,
        async send(input) {
          const message = createTaskMessage(input);
          await producer!.publish(encodeTaskMessage(message), {
            queue,
            ...(input.eta && { availableAt: input.eta.getTime() }),
            ...(input.priority !== undefined && { priority: input.priority }),
          });
          return message.headers.id;
        },
        wait: (id) => backend!.waitFor(id, { timeout: ctx.presenceMs() / 1000 }),
      };
    },
  };
  return ctx;
}
