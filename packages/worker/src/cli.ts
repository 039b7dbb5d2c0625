#!/usr/bin/env node
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { isCeleryTsError, resolveTransport } from "@celery-ts/core";
import { createConsoleLogger, type LogLevel } from "./console-logger.ts";
import { loadTasks } from "./internal/load-tasks.ts";
import { superviseWorkers } from "./supervisor.ts";
import { createWorker } from "./worker.ts";

const USAGE = `Usage: celery-ts worker --app <tasks module> [options]

Runs the tasks that <tasks module> exports (what defineTask() returns).

Options:
  -A, --app <path>            module exporting the tasks (.js, or .ts on Node >= 22.18)
  -b, --broker <url>          broker URL            [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
      --backend <url>         result backend URL    [env CELERY_RESULT_BACKEND]
  -Q, --queues <a,b>          queues to consume     [default celery]
  -p, --processes <n>         worker processes      [default: one per CPU core]
  -c, --concurrency <n>       tasks at once, per process (async) [default 10]
      --prefetch <n>          messages taken ahead, per process  [default: concurrency]
      --shutdown-timeout <s>  seconds running tasks get on shutdown [default 30]
  -l, --log-level <level>     debug, info, warn, error [default info]
      --log-format <format>   pretty or json [default pretty]
  -h, --help`;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} takes a whole number of 1 or more, not "${value}"`);
  return n;
}

function nonNegative(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) {
    throw new Error(`--${name} takes a number of seconds, not "${value}"`);
  }
  return n;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help") {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== "worker") throw new Error(`unknown command "${command}"\n\n${USAGE}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      app: { type: "string", short: "A" },
      broker: { type: "string", short: "b" },
      backend: { type: "string" },
      queues: { type: "string", short: "Q" },
      processes: { type: "string", short: "p" },
      concurrency: { type: "string", short: "c" },
      prefetch: { type: "string" },
      "shutdown-timeout": { type: "string" },
      "log-level": { type: "string", short: "l" },
      "log-format": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!values.app)
    throw new Error(`--app is required: the module that exports your tasks\n\n${USAGE}`);
  const level = (values["log-level"] ?? "info") as LogLevel;
  if (!["debug", "info", "warn", "error"].includes(level))
    throw new Error(`unknown --log-level "${level}"`);
  const format = values["log-format"] ?? "pretty";
  if (format !== "json" && format !== "pretty") {
    throw new Error(`--log-format is pretty or json, not "${format}"`);
  }
  const logger = createConsoleLogger({ level, format, fields: { pid: process.pid } });
  const broker = values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db";
  const backend = values.backend ?? process.env.CELERY_RESULT_BACKEND;
  const processes = positiveInt(values.processes, "processes") ?? availableParallelism();
  const concurrency = positiveInt(values.concurrency, "concurrency");
  const prefetch = positiveInt(values.prefetch, "prefetch");
  const shutdownTimeout = nonNegative(values["shutdown-timeout"], "shutdown-timeout");

  // Fail fast on a bad module, URL or unreachable broker, before any child starts (and
  // crash-loops on it).
  const tasks = await loadTasks(values.app);
  if (processes > 1) {
    const probe = await resolveTransport(broker);
    await probe.connect();
    await probe.close();
    const args = [...argv, "--processes", "1"];
    return superviseWorkers({ processes, script: process.argv[1]!, args, logger });
  }

  const worker = createWorker({
    broker,
    ...(backend !== undefined && { backend }),
    tasks,
    logger,
    ...(values.queues !== undefined && { queues: values.queues.split(",").map((q) => q.trim()) }),
    ...(concurrency !== undefined && { concurrency }),
    ...(prefetch !== undefined && { prefetch }),
    ...(shutdownTimeout !== undefined && { shutdownTimeout }),
  });
  const supervised = process.send !== undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    // A supervised child stops on its supervisor's SIGTERM; the terminal's Ctrl-C reaches the
    // whole process group, and the supervisor turns it into that SIGTERM.
    if (supervised && signal === "SIGINT") return;
    if (++signals > 1) {
      logger.warn("second signal: exiting without waiting for running tasks", { signal });
      process.exit(1);
    }
    logger.info("shutting down; running tasks may finish", { signal });
    void worker.stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // A supervised child whose supervisor died stops too, rather than run on unwatched.
  process.on("disconnect", () => void worker.stop());
  await worker.start();
  await worker.stopped;
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message =
      isCeleryTsError(error) || error instanceof Error ? error.message : String(error);
    process.stderr.write(`celery-ts: ${message}\n`);
    process.exit(isCeleryTsError(error, "CONFIG") ? 78 : 1);
  },
);
