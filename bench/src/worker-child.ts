// One worker in a process of its own, so that its CPU and RSS are its own: celery-ts or BullMQ.
// Configured by BENCH_CHILD (JSON). Prints `ready <rss>` once started, then
// `done <tasks> <ms> <cpu µs> <rss> <V8 heap used>` each time another `every` tasks are done (ms and CPU from
// just before the worker started).
// Each system's code is imported only where it runs, so that a worker's RSS holds its own
// modules and none of the other's.
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask, silentLogger } from "@celery-ts/core";
import { noop, noopOn } from "./tasks.ts";

export interface ChildConfig {
  system: "celery-ts" | "bullmq";
  broker: string;
  backend: string;
  /** BullMQ: its key prefix, and the Redis URL. */
  prefix: string;
  queue: string;
  concurrency: number;
  every: number;
  /** BullMQ: drop completed jobs after this many seconds (as celery-ts's results expire). */
  keepSeconds?: number;
  /** celery-ts: the task waits this long (an I/O-bound task) instead of returning at once. */
  sleepMs?: number;
}

const config = JSON.parse(process.env.BENCH_CHILD ?? "{}") as ChildConfig;
// The driver that a URL resolves to is imported by worker.start(): import it first, so that the
// timing leaves out loading code for both systems (BullMQ's is imported above).
if (config.system === "celery-ts" && config.broker.startsWith("redis")) {
  await import("@celery-ts/redis");
}
const started = performance.now();
const cpu = process.cpuUsage();
let done = 0;
let next = config.every;

const report = () => {
  while (done >= next) {
    const used = process.cpuUsage(cpu);
    const ms = performance.now() - started;
    const { rss, heapUsed } = process.memoryUsage();
    process.stdout.write(
      `done ${next} ${ms.toFixed(1)} ${used.user + used.system} ${rss} ${heapUsed}\n`,
    );
    next += config.every;
  }
};
const finished = () => {
  done++;
  if (done >= next) report();
};

let stop: () => Promise<void>;
if (config.system === "celery-ts") {
  // The worker logs "task succeeded" once the result is stored.
  const logger = {
    ...silentLogger,
    info(message: string) {
      if (message === "task succeeded") finished();
    },
  };
  const { createWorker } = await import("@celery-ts/worker");
  const worker = createWorker({
    broker: config.broker,
    backend: config.backend,
    tasks: [
      config.sleepMs === undefined
        ? noopOn(config.queue)
        : defineTask(noop.name, (n: number) => sleep(config.sleepMs, n), { queue: config.queue }),
    ],
    queues: [config.queue],
    concurrency: config.concurrency,
    logger,
  });
  await worker.start();
  stop = () => worker.stop();
} else {
  const { Worker: BullWorker } = await import("bullmq");
  const url = new URL(config.broker);
  const worker = new BullWorker(config.queue, async (job) => job.data.n as number, {
    connection: {
      host: url.hostname,
      port: Number(url.port || 6379),
      db: Number(url.pathname.slice(1) || 0),
      maxRetriesPerRequest: null,
    },
    prefix: config.prefix,
    concurrency: config.concurrency,
    ...(config.keepSeconds !== undefined && { removeOnComplete: { age: config.keepSeconds } }),
  });
  worker.on("completed", finished);
  await worker.waitUntilReady();
  stop = () => worker.close();
}
process.stdout.write(`ready ${process.memoryUsage().rss}\n`);
process.on("SIGTERM", () => {
  void stop().finally(() => process.exit(0));
});
