// celery-ts measured the same way on every broker: in-process client and worker, so that each
// figure leaves out process start-up.
import { createClient, s } from "@celery-ts/client";
import { silentLogger, type Logger } from "@celery-ts/core";
import { createWorker, type WorkerOptions } from "@celery-ts/worker";
import { chunks, LATENCY_ROUNDS, type Figures } from "./figures.ts";
import { perSecond, timed, until } from "./stats.ts";
import { noopOn } from "./tasks.ts";

export { noopOn };

/** Where a section runs celery-ts: broker and result backend URLs. */
export interface Setup {
  broker: string;
  backend: string;
  /** Empties what the last scenario left (queue and results); resolves with the queue to use. */
  fresh(): Promise<string>;
}

/** A logger that counts finished tasks: the worker logs "task succeeded" once the result is stored. */
export function countingLogger(): Logger & { succeeded: number } {
  const logger = {
    ...silentLogger,
    succeeded: 0,
    info(message: string) {
      if (message === "task succeeded") logger.succeeded++;
    },
  };
  return logger;
}

/**
 * Sends `count` no-op tasks to `queue`: one by one, each delay() awaited, or in bulk (concurrent
 * delay() calls, 1,000 at a time). Resolves with the tasks sent per second.
 */
export async function enqueue(
  broker: string,
  queue: string,
  count: number,
  bulk: boolean,
): Promise<number> {
  const client = createClient({ broker });
  const handle = client.task(noopOn(queue));
  await client.connect();
  const ms = await timed(async () => {
    if (bulk)
      for (const chunk of chunks(count, 1_000))
        await Promise.all(chunk.map((i) => handle.delay(i)));
    else for (let i = 0; i < count; i++) await handle.delay(i);
  });
  await client.close();
  return perSecond(count, ms);
}

/**
 * Sends `count` no-op tasks to `queue` with `client.sendMany()`, 1,000 at a time: each batch goes
 * out through the transport's publishBatch (one MULTI on Redis). Resolves with tasks per second.
 */
export async function enqueueMany(broker: string, queue: string, count: number): Promise<number> {
  const client = createClient({ broker });
  await client.connect();
  const task = noopOn(queue);
  const ms = await timed(async () => {
    for (const chunk of chunks(count, 1_000)) await client.sendMany(chunk.map((i) => s(task, i)));
  });
  await client.close();
  return perSecond(count, ms);
}

/** `count` tasks queued first, then a worker started: tasks done per second, start-up included. */
export async function processing(
  setup: Setup,
  concurrency: number,
  count: number,
  workerOptions: Partial<WorkerOptions> = {},
): Promise<number> {
  return (await processingCost(setup, concurrency, count, workerOptions)).perSecond;
}

/**
 * As `processing()`, with the CPU time this process spent per task meanwhile (the worker, start-up
 * included): on a shared machine, where the rate moves with the other sessions' load, CPU time
 * moves far less.
 */
export async function processingCost(
  setup: Setup,
  concurrency: number,
  count: number,
  workerOptions: Partial<WorkerOptions> = {},
): Promise<{ perSecond: number; cpuMicrosPerTask: number }> {
  const queue = await setup.fresh();
  await enqueue(setup.broker, queue, count, true);
  const logger = countingLogger();
  const worker = createWorker({
    broker: setup.broker,
    backend: setup.backend,
    tasks: [noopOn(queue)],
    queues: [queue],
    concurrency,
    logger,
    ...workerOptions,
  });
  const cpu = process.cpuUsage();
  const ms = await timed(async () => {
    await worker.start();
    await until(() => logger.succeeded, count);
  });
  const used = process.cpuUsage(cpu);
  await worker.stop();
  return { perSecond: perSecond(count, ms), cpuMicrosPerTask: (used.user + used.system) / count };
}

/** Send, then await the result, `rounds` times in a row, with a worker at concurrency 1. */
export async function roundTrips(
  broker: string,
  backend: string,
  queue: string,
  rounds = LATENCY_ROUNDS,
): Promise<number[]> {
  const worker = createWorker({
    broker,
    backend,
    tasks: [noopOn(queue)],
    queues: [queue],
    concurrency: 1,
  });
  await worker.start();
  const client = createClient({ broker, backend });
  const handle = client.task(noopOn(queue));
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      samples.push(await timed(async () => (await handle.delay(i)).get({ timeout: 30 })));
    }
  } finally {
    await client.close();
    await worker.stop();
  }
  return samples;
}

/**
 * Every figure for celery-ts on one broker: enqueue one by one (total / 4) and in bulk (total),
 * processing at concurrency 50 (total) and 1 (total / 10), and round trips.
 */
export async function celeryTsFigures(total: number, setup: Setup): Promise<Figures> {
  const figures: Figures = {};
  figures.enqueueOne = await enqueue(setup.broker, await setup.fresh(), total / 4, false);
  figures.enqueueBulk = await enqueue(setup.broker, await setup.fresh(), total, true);
  figures.enqueueSendMany = await enqueueMany(setup.broker, await setup.fresh(), total);
  figures.process50 = await processing(setup, 50, total);
  figures.process1 = await processing(setup, 1, total / 10);
  figures.latency = await roundTrips(setup.broker, setup.backend, await setup.fresh());
  return figures;
}
