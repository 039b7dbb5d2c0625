import { parseArgs } from "node:util";
import { resolveStore, type Logger } from "@celery-ts/core";
import { createBeat, type Beat } from "../beat/beat.ts";
import type { BeatEntry, CatchUp } from "../beat/beat-entry.ts";
import { createBeatSchedule, type BeatEntryStatus } from "../beat/beat-schedule.ts";
import { loadSchedule } from "../beat/load-schedule.ts";
import { COMMAND_LOG_OPTIONS, commandLogger, loggerFromFlags } from "./log-options.ts";
import { retryOnStartupOption, STARTUP_OPTIONS, STARTUP_USAGE } from "./startup-options.ts";

const USAGE = `Usage: celery-ts beat [options]            run a beat instance (run as many as you like)
       celery-ts beat list [--json]
       celery-ts beat add --name <n> --task <t> (--every <s> | --crontab "<m h dom mon dow>" | --at <iso>) [entry options]
       celery-ts beat add --entry '<json>'
       celery-ts beat remove|pause|resume <name>

Sends periodic tasks. Every instance sharing a store agrees on one leader, which sends each tick once.

Options:
  -b, --broker <url>        broker URL          [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
      --store <url>         coordination store  [env CELERY_TS_STORE_URL, default: the broker URL]
      --namespace <name>    schedule namespace  [default "default"]
  -s, --schedule <file>     entries: .json, or a module exporting them (run only)
      --lease <s>           leader lease, seconds [default 5]
      --grace <s>           ticks later than this follow the catch-up policy [default 2 x lease]
      --timezone <iana>     zone of crontab entries [default UTC]
  -l, --log-level <level>   debug, info, warning, error (any case)
                            [default info; list, add, remove, pause, resume: warning]
      --log-format <format> pretty or json [default pretty]
${STARTUP_USAGE}
Entry options (add):
      --args <json>  --kwargs <json>  --queue <q>  --priority <0-9>  --expires <s>
      --jitter <s>  --catch-up once|skip  --timezone <iana>
  -h, --help`;

const OPTIONS = {
  broker: { type: "string", short: "b" },
  store: { type: "string" },
  namespace: { type: "string" },
  schedule: { type: "string", short: "s" },
  lease: { type: "string" },
  grace: { type: "string" },
  timezone: { type: "string" },
  ...COMMAND_LOG_OPTIONS,
  json: { type: "boolean" },
  name: { type: "string" },
  task: { type: "string" },
  every: { type: "string" },
  crontab: { type: "string" },
  at: { type: "string" },
  args: { type: "string" },
  kwargs: { type: "string" },
  queue: { type: "string" },
  priority: { type: "string" },
  expires: { type: "string" },
  jitter: { type: "string" },
  "catch-up": { type: "string" },
  entry: { type: "string" },
  ...STARTUP_OPTIONS,
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

function number(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new Error(`--${flag} takes a number of seconds, not "${value}"`);
  }
  return n;
}

function json(value: string | undefined, flag: string): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new Error(
      `--${flag} takes JSON, e.g. --${flag} '${flag === "args" ? "[1, 2]" : '{"a": 1}'}' (${(error as Error).message})`,
      { cause: error },
    );
  }
}

/** The entry `beat add` describes with flags (or `--entry` JSON). */
function entryOf(values: Values): BeatEntry {
  if (values.entry !== undefined) return json(values.entry, "entry") as BeatEntry;
  if (!values.name || !values.task) throw new Error(`beat add needs --name and --task\n\n${USAGE}`);
  const options = {
    ...(values.queue !== undefined && { queue: values.queue }),
    ...(values.priority !== undefined && { priority: Number(values.priority) }),
    ...(values.expires !== undefined && { expires: number(values.expires, "expires") }),
  };
  const entry: Record<string, unknown> = {
    name: values.name,
    task: values.task,
    every: number(values.every, "every"),
    crontab: values.crontab,
    at: values.at,
    timezone: values.timezone,
    args: json(values.args, "args"),
    kwargs: json(values.kwargs, "kwargs"),
    options: Object.keys(options).length > 0 ? options : undefined,
    jitter: number(values.jitter, "jitter"),
    catchUp: values["catch-up"] as CatchUp | undefined,
  };
  for (const key of Object.keys(entry)) if (entry[key] === undefined) delete entry[key];
  return entry as unknown as BeatEntry;
}

function describe(status: BeatEntryStatus): string {
  const entry = status.entry;
  const when = entry
    ? entry.every !== undefined
      ? `every ${entry.every}s`
      : entry.crontab !== undefined
        ? `crontab ${typeof entry.crontab === "string" ? entry.crontab : JSON.stringify(entry.crontab)}`
        : `at ${String(entry.at)}`
    : "?";
  const last = status.last
    ? `${new Date(status.last.tick).toISOString()} ${status.last.state}`
    : "never";
  return `${status.name}\t${entry?.task ?? status.last?.task ?? "?"}\t${when}\t${status.source}\t${
    status.paused ? "paused" : "active"
  }\tlast: ${last}`;
}

async function admin(
  command: string,
  values: Values,
  positionals: string[],
  storeUrl: string,
): Promise<number> {
  // As the other one-shot commands: the store's warnings (a lost connection) on stderr.
  const store = await resolveStore(storeUrl, { logger: commandLogger(values) });
  try {
    const schedule = createBeatSchedule({
      store,
      namespace: values.namespace ?? "default",
      ...(values.timezone !== undefined && { timezone: values.timezone }),
    });
    const name = positionals[0];
    if (command === "list") {
      const entries = await schedule.list();
      if (values.json) process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
      else
        process.stdout.write(
          entries.map((status) => `${describe(status)}\n`).join("") || "no entries\n",
        );
      return 0;
    }
    if (command === "add") {
      const entry = entryOf(values);
      await schedule.add(entry);
      process.stdout.write(`added ${entry.name}\n`);
      return 0;
    }
    if (!name) throw new Error(`beat ${command} needs the entry's name\n\n${USAGE}`);
    if (command === "remove") {
      if (!(await schedule.remove(name))) {
        process.stderr.write(
          `celery-ts: no entry named "${name}" was added at run time; entries from code or a schedule ` +
            "file are removed there (pause them meanwhile)\n",
        );
        return 1;
      }
      process.stdout.write(`removed ${name}\n`);
      return 0;
    }
    if (command === "pause") await schedule.pause(name);
    else await schedule.resume(name);
    process.stdout.write(`${command === "pause" ? "paused" : "resumed"} ${name}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export interface EmbeddedBeatOptions {
  broker: string;
  store?: string | undefined;
  schedule?: string | undefined;
  namespace?: string | undefined;
  timezone?: string | undefined;
  leaseSeconds?: number | undefined;
  graceSeconds?: number | undefined;
  brokerConnectionRetryOnStartup?: boolean | undefined;
  logger: Logger;
  /** Aborting it (a stop signal) stops the beat, also while it waits for its broker at startup. */
  signal?: AbortSignal | undefined;
}

/** Starts a beat as `celery-ts beat` does: what `celery-ts worker --beat` runs beside its worker. */
export async function startBeat(options: EmbeddedBeatOptions): Promise<Beat> {
  const entries = options.schedule ? await loadSchedule(options.schedule) : [];
  const beat = createBeat({
    broker: options.broker,
    store: options.store ?? options.broker,
    entries,
    logger: options.logger,
    ...(options.namespace !== undefined && { namespace: options.namespace }),
    ...(options.timezone !== undefined && { timezone: options.timezone }),
    ...(options.leaseSeconds !== undefined && { leaseSeconds: options.leaseSeconds }),
    ...(options.graceSeconds !== undefined && { graceSeconds: options.graceSeconds }),
    ...(options.brokerConnectionRetryOnStartup !== undefined && {
      brokerConnectionRetryOnStartup: options.brokerConnectionRetryOnStartup,
    }),
  });
  const onAbort = (): void => void beat.stop();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (!options.signal?.aborted) await beat.start();
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  return beat;
}

/** `celery-ts beat ...`: runs an instance, or changes the schedule kept in the store. */
export async function beatCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  const broker = values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db";
  const storeUrl = values.store ?? process.env.CELERY_TS_STORE_URL ?? broker;
  if (command !== undefined) {
    if (!["list", "add", "remove", "pause", "resume"].includes(command)) {
      throw new Error(`unknown beat command "${command}"\n\n${USAGE}`);
    }
    return admin(command, values, rest, storeUrl);
  }
  const logger = loggerFromFlags(values);
  // Installed first: a stop signal while beat waits for its broker at startup stops it cleanly.
  const stopping = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(1);
    logger.info("beat: shutting down", { signal });
    stopping.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const beat = await startBeat({
    broker,
    store: storeUrl,
    schedule: values.schedule,
    namespace: values.namespace,
    timezone: values.timezone,
    leaseSeconds: number(values.lease, "lease"),
    graceSeconds: number(values.grace, "grace"),
    brokerConnectionRetryOnStartup: retryOnStartupOption(values),
    logger,
    signal: stopping.signal,
  });
  if (stopping.signal.aborted) void beat.stop();
  else stopping.signal.addEventListener("abort", () => void beat.stop(), { once: true });
  await beat.stopped;
  return 0;
}
