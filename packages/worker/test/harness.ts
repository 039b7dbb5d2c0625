import { randomUUID } from "node:crypto";
import {
  MemoryBroker,
  createMemoryBackend,
  createMemoryTransport,
  createTaskMessage,
  encodeTaskMessage,
  type ResultBackend,
  type ResultMeta,
  type AnyTaskDefinition,
  type TaskDefinition,
  type TaskMessageInput,
  type Transport,
} from "@celery-ts/core";
import { createWorker, type Worker, type WorkerOptions } from "../src/index.ts";

/** One broker and backend for a worker test, on each transport the worker runs against. */
export interface Setup {
  name: string;
  /** One queue per test. */
  queue: string;
  transport(): Transport;
  backend: ResultBackend;
  injectRaw(queue: string, raw: string): Promise<void>;
  close(): Promise<void>;
}

export const setups: { name: string; create(): Promise<Setup> }[] = [
  {
    name: "memory",
    async create() {
      const broker = new MemoryBroker();
      return {
        name: "memory",
        queue: `worker-test-${randomUUID()}`,
        transport: () => createMemoryTransport({ broker }),
        backend: createMemoryBackend(),
        injectRaw: async (queue, raw) => broker.push(queue, raw),
        close: async () => {},
      };
    },
  },
];

/** A running worker plus a producer connection on the same broker. */
export class Fixture {
  readonly setup: Setup;
  readonly queue: string;
  readonly producer: Transport;
  readonly worker: Worker;

  constructor(setup: Setup, tasks: AnyTaskDefinition[], options: Partial<WorkerOptions> = {}) {
    this.setup = setup;
    this.queue = setup.queue;
    this.producer = setup.transport();
    this.worker = createWorker({
      broker: setup.transport(),
      backend: setup.backend,
      tasks,
      queues: [this.queue],
      shutdownTimeout: 5,
      ...options,
    });
  }

  async send(input: TaskMessageInput): Promise<string> {
    const message = createTaskMessage(input);
    await this.producer.publish(encodeTaskMessage(message), {
      queue: this.queue,
      ...(input.eta && { availableAt: input.eta.getTime() }),
      ...(input.priority !== undefined && { priority: input.priority }),
    });
    return message.headers.id;
  }

  wait(id: string, timeoutMs = 10_000): Promise<ResultMeta> {
    return this.setup.backend.waitFor(id, { timeoutMs });
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));
