import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { resolveTransport, type Logger } from "@celery-ts/core";
import { CONTROL_OPTIONS, CONTROL_USAGE, controlWorkerOptions } from "./control-options.ts";
import { METRICS_OPTIONS, METRICS_USAGE, metricsWorkerOptions } from "./metrics-options.ts";
import {
  DELIVERY_LIMIT_OPTIONS,
  DELIVERY_LIMIT_USAGE,
  withDeliveryLimits,
} from "./delivery-limit-options.ts";
import { loggerFromFlags } from "./log-options.ts";
import { retryOnStartupOption, STARTUP_OPTIONS, STARTUP_USAGE } from "./startup-options.ts";
import type { Beat } from "../beat/beat.ts";
import { poolWorkerOptions, positiveInt } from "./pool-options.ts";
import { loadTasks } from "../internal/load-tasks.ts";
import { connectAllOnStartup } from "../internal/connect-on-startup.ts";
import { RETIRING, superviseWorkers, tellSupervisor } from "../supervisor.ts";
import { createWorker, type WorkerOptions } from "../worker.ts";
import { handleStopSignals } from "../internal/stop-signals.ts";

const WORKER_OPTIONS = {
  app: { type: "string", short: "A" },
  broker: { type: "string", short: "b" },
  backend: { type: "string" },
  queues: { type: "string", short: "Q" },
  processes: { type: "string", short: "p" },
  concurrency: { type: "string", short: "c" },
  prefetch: { type: "string" },
  "shutdown-timeout": { type: "string" },
  "max-tasks-per-child": { type: "string" },
  "max-memory-per-child": { type: "string" },
  "log-level": { type: "string", short: "l" },
  "log-format": { type: "string" },
  beat: { type: "boolean", short: "B" },
  schedule: { type: "string", short: "s" },
  store: { type: "string" },
  ...STARTUP_OPTIONS,
  ...DELIVERY_LIMIT_OPTIONS,
  ...CONTROL_OPTIONS,
  ...METRICS_OPTIONS,
  help: { type: "boolean", short: "h" },
} as const;

type WorkerValues = ReturnType<typeof parseArgs<{ options: typeof WORKER_OPTIONS }>>["values"];

export const WORKER_USAGE = `Usage: celery-ts worker --app <tasks module> [options]

Runs the tasks that <tasks module> exports (what defineTask() returns).

Options:
  -A, --app <path>            module exporting the tasks (.js, or .ts on Node >= 22.18)
  -b, --broker <url>          broker URL            [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
      --backend <url>         result backend URL    [env CELERY_RESULT_BACKEND]
  -Q, --queues <a,b>          queues to consume     [default celery]
  -p, --processes <n>         worker processes      [default: one per CPU core]
  -c, --concurrency <n>       tasks at once, per process (async) [default 50]
      --prefetch <n>          messages held at once, per process [default: concurrency + max(4, 25%)]
      --shutdown-timeout <s>  seconds running tasks get on shutdown [default 30]
      --max-tasks-per-child <n>   replace a worker process after it started n tasks
      --max-memory-per-child <KiB> replace a worker process once a task leaves it above this
  -B, --beat                  also run a beat instance (see celery-ts beat --help)
  -s, --schedule <file>       the beat's entries (.json, or a module)
      --store <url>           the coordination store of beat, its tick claims and fleet-wide rate limits
                              [env CELERY_TS_STORE_URL, default: the broker URL]
${STARTUP_USAGE}
${DELIVERY_LIMIT_USAGE}
${CONTROL_USAGE}
${METRICS_USAGE}
  -l, --log-level <level>     debug, info, warning, error (any case) [default info]
      --log-format <format>   pretty or json [default pretty]
  -h, --help`;

/** `celery-ts worker`: runs the tasks an app module exports, in one or several processes. */
export async function workerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: WORKER_OPTIONS });
  if (values.help) {
    process.stdout.write(`${WORKER_USAGE}\n`);
    return 0;
  }
  if (!values.app)
    throw new Error(`--app is required: the module that exports your tasks\n\n${WORKER_USAGE}`);
  const logger = loggerFromFlags(values);
  const storeFromEnv = process.env.CELERY_TS_STORE_URL;
  if (values.store === undefined && storeFromEnv) values.store = storeFromEnv;
  const broker = withDeliveryLimits(
    values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db",
    values,
  );
  const processes = positiveInt(values.processes, "processes") ?? availableParallelism();
  const metrics = metricsWorkerOptions(values, processes);
  const pool = poolWorkerOptions(values);
  const recycling = pool.maxTasksPerChild !== undefined || pool.maxMemoryPerChild !== undefined;
  const supervised = process.send !== undefined;
  const retryOnStartup = retryOnStartupOption(values);

  // Fail fast on a bad module, URL or unreachable broker, before any child starts (and
  // crash-loops on it).
  const tasks = await loadTasks(values.app);
  logger.debug("app module loaded", { app: values.app, tasks: tasks.map((task) => task.name) });
  // One beat per worker command, in the supervisor when there are children. A stop signal while
  // it waits for its broker at startup ends that wait, and the command, cleanly.
  const beatStopping = new AbortController();
  const stopBeat = (): void => beatStopping.abort();
  if (values.beat) process.once("SIGTERM", stopBeat).once("SIGINT", stopBeat);
  let beat: Beat | undefined;
  try {
    beat = values.beat
      ? await (
          await import("./beat.ts")
        ).startBeat({
          broker,
          store: values.store,
          schedule: values.schedule,
          logger,
          brokerConnectionRetryOnStartup: retryOnStartup,
          signal: beatStopping.signal,
        })
      : undefined;
  } finally {
    process.off("SIGTERM", stopBeat).off("SIGINT", stopBeat);
  }
  if (beatStopping.signal.aborted) {
    logger.info("shutting down", { while: "beat was waiting for its broker" });
    await beat?.stop();
    return 0;
  }
  // Recycled processes need a supervisor to replace them, even when there is one.
  const code =
    processes > 1 || (recycling && !supervised)
      ? await superviseChildren(argv, broker, processes, logger, retryOnStartup)
      : await runWorker(
          {
            ...pool,
            ...metrics,
            broker,
            tasks,
            logger,
            brokerConnectionRetryOnStartup: retryOnStartup,
          },
          values,
          supervised,
        );
  await beat?.stop();
  return code;
}

/**
 * Waits until the broker answers (as a worker does at startup), then runs `processes` one-process
 * workers and supervises them.
 */
async function superviseChildren(
  argv: string[],
  broker: string,
  processes: number,
  logger: Logger,
  retry: boolean,
): Promise<number> {
  const probe = await resolveTransport(broker, { logger });
  const stopping = new AbortController();
  const stop = (): void => stopping.abort();
  process.once("SIGTERM", stop).once("SIGINT", stop);
  try {
    const part = { what: "broker", given: broker, name: "", connect: () => probe.connect() };
    const connected = await connectAllOnStartup([part], {
      log: logger,
      retry,
      signal: stopping.signal,
    });
    if (!connected) return 0;
  } finally {
    process.off("SIGTERM", stop).off("SIGINT", stop);
    await probe.close();
  }
  const childArgv = argv.filter((arg) => arg !== "--beat" && arg !== "-B");
  const args = ["worker", ...childArgv, "--processes", "1"];
  return superviseWorkers({ processes, script: process.argv[1]!, args, logger });
}

/** Runs the worker in this process until a stop signal (or its supervisor's end) stops it. */
async function runWorker(
  options: WorkerOptions & { logger: Logger },
  values: WorkerValues,
  supervised: boolean,
): Promise<number> {
  const backend = values.backend ?? process.env.CELERY_RESULT_BACKEND;
  const worker = createWorker({
    ...options,
    ...(backend !== undefined && { backend }),
    ...(values.queues !== undefined && { queues: values.queues.split(",").map((q) => q.trim()) }),
    ...(values.store !== undefined && { store: values.store }),
    ...controlWorkerOptions(values),
    onRetire: (info) => tellSupervisor({ ...info, type: RETIRING }),
  });
  handleStopSignals({
    logger: options.logger,
    supervised,
    stop: () => void worker.stop(),
    exitNow: () => process.exit(1),
  });
  // A supervised child whose supervisor died stops too, rather than run on unwatched.
  process.on("disconnect", () => void worker.stop());
  await worker.start();
  await worker.stopped;
  return 0;
}
