import {
  MemoryBroker,
  createMemoryBackend,
  createMemoryStore,
  createMemoryTransport,
  signals as processSignals,
} from "@celery-ts/core";
import {
  createClient,
  type AsyncResult,
  type Client,
  type SendOptions,
  type TaskHandle,
} from "@celery-ts/client";
import { createWorker, type Worker, type WorkerOptions } from "../worker.ts";
import { checkedTransport } from "./checked-transport.ts";
import { createEagerWaits, type EagerWaits } from "./eager.ts";

export interface TestClientOptions extends Omit<
  WorkerOptions,
  "broker" | "backend" | "store" | "hostname"
> {
  /**
   * Celery's `task_always_eager`: a send resolves once its task has finished in the test worker
   * (retries included, each after its countdown), so `get()` has the result at once. A canvas
   * (chain, chord, group) resolves once every step has run, in order, each given the previous
   * step's result as the wire carries it. `false`: sends only queue, as with a real broker; await
   * `get()`. A send with a countdown or eta is never waited for.
   * @default true
   */
  eager?: boolean;
  /** Seconds an eager send waits for its task before it rejects with a TIMEOUT error. @default 30 */
  eagerTimeout?: number;
}

/** A client whose tasks run in this process, through the wire's encoding; `close()` stops all. */
export interface TestClient extends Client {
  /** The in-process worker that runs the tasks (e.g. for `setRateLimit`). */
  readonly worker: Worker;
}

/**
 * Tests without a broker: a client and a worker in this process, over an in-memory broker, result
 * backend and store. Every send goes through what a real one does: arguments are encoded to JSON
 * (a Map, a Set, binary data or a function is refused as a real send would be), the worker decodes
 * them, runs the task with its hooks, retries, time limits and rate limits, and stores the result
 * as JSON. A send to a queue the test worker does not consume, or of a task it does not have,
 * rejects at once, naming the fix, instead of waiting forever.
 *
 * @example
 * const app = await createTestClient({ tasks: [add] });
 * expect(await (await app.task(add).delay(2, 3)).get()).toBe(5);
 * await app.close();
 */
export async function createTestClient(options: TestClientOptions): Promise<TestClient> {
  const { eager = true, eagerTimeout = 30, ...workerOptions } = options;
  const tasks = [...options.tasks];
  const names = new Set(tasks.map((task) => task.name));
  const queues = options.queues ?? [
    ...new Set(["celery", ...tasks.flatMap((task) => task.options.queue ?? [])]),
  ];
  const broker = new MemoryBroker();
  const backend = createMemoryBackend();
  const userSignals = options.signals ?? processSignals;
  const waits = createEagerWaits({ eager, timeout: eagerTimeout, backend, userSignals });
  const worker = createWorker({
    ...workerOptions,
    tasks,
    queues,
    signals: waits.signals,
    broker: createMemoryTransport({ broker }),
    backend,
    store: createMemoryStore(),
    hostname: "celery-ts@test",
  });
  await worker.start();
  const inner = createMemoryTransport({ broker });
  const transport = checkedTransport(inner, queues, names, (id) => waits.sent(id));
  const client = createClient({
    broker: transport,
    backend,
    signals: userSignals,
    publishRetry: false,
  });
  return {
    worker,
    task: (declaration) => eagerHandle(client.task(declaration), waits),
    sendTask: (name, sendOptions) => waits.settle(client.sendTask(name, sendOptions)),
    asyncResult: (taskId) => client.asyncResult(taskId),
    // Canvases run on the test worker like any task, step by step; eager sends resolve when done.
    applyAsync: ((sig: Parameters<Client["applyAsync"]>[0], options?: object) =>
      waits.settleCanvas(client.applyAsync(sig, options))) as Client["applyAsync"],
    sendMany: (sigs) => waits.settleCanvas(client.sendMany(sigs)),
    restoreGroup: client.restoreGroup,
    control: client.control,
    connect: () => client.connect(),
    async close() {
      await client.close();
      await worker.stop();
      await transport.close();
    },
  };
}

/** The client's task handle, whose sends resolve as `waits` says (once run, when eager). */
function eagerHandle<Args extends unknown[], Result, Kwargs extends object>(
  handle: TaskHandle<Args, Result, Kwargs>,
  waits: EagerWaits,
): TaskHandle<Args, Result, Kwargs> {
  // applyAsync is overloaded (positional arguments, or a keyword call): pass either through.
  const applyAsync = handle.applyAsync as (
    call: unknown,
    options?: SendOptions,
  ) => Promise<AsyncResult<Result>>;
  return Object.freeze({
    ...handle,
    delay: (...args: Args) => waits.settle(handle.delay(...args)),
    applyAsync: (call: unknown, options?: SendOptions) => waits.settle(applyAsync(call, options)),
  }) as TaskHandle<Args, Result, Kwargs>;
}
