import { parseArgs } from "node:util";
import { receiveEvents, type CeleryEvent } from "@celery-ts/core";
import { FleetView } from "./fleet-view.ts";
import { COMMAND_LOG_OPTIONS, COMMAND_LOG_USAGE, commandLogger } from "./log-options.ts";
import { withBroadcast } from "./remote.ts";

const USAGE = `Usage: celery-ts events [options]

A live view of the fleet (Python Celery workers too) from Celery's events: workers with their
heartbeats, tasks by state, rates. Workers send task events when started with -E (or after
\`celery-ts control enable_events\`).

Options:
  -b, --broker <url>          broker URL [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
      --dump                  print each event as it arrives, as \`celery events --dump\`
  -j, --json                  (with --dump) one JSON event per line
      --for <s>               stop after this many seconds [default: until Ctrl-C]
      --enable                send enable_events to the workers first
${COMMAND_LOG_USAGE}
  -h, --help`;

/** `celery events --dump`'s line for one event. */
export function formatEvent(event: CeleryEvent, names: Map<string, string>): string {
  const { type, hostname, timestamp, ...rest } = event;
  const ts = new Date(timestamp * 1000).toISOString().replace("T", " ").replace("Z", "");
  const fields = { ...rest } as Record<string, unknown>;
  for (const key of ["utcoffset", "pid", "clock"]) delete fields[key];
  if (type.startsWith("task-") && typeof fields.uuid === "string") {
    const uuid = fields.uuid;
    delete fields.uuid;
    let task = names.get(uuid) ?? "";
    if (type === "task-received" || type === "task-sent") {
      task = `${String(fields.name)}(${uuid}) args=${String(fields.args)} kwargs=${String(fields.kwargs)}`;
      names.set(uuid, task);
      for (const key of ["name", "args", "kwargs"]) delete fields[key];
    }
    const extra = Object.keys(fields)
      .sort()
      .map((key) => `${key}=${String(fields[key])}`)
      .join(", ");
    return `${hostname} [${ts}] ${type}: ${task || uuid}${extra ? ` ${extra}` : ""}`;
  }
  const extra = Object.keys(fields)
    .sort()
    .map((key) => `${key}=${JSON.stringify(fields[key])}`)
    .join(", ");
  return `${hostname} [${ts}] ${type}${extra ? `: ${extra}` : ""}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      broker: { type: "string", short: "b" },
      dump: { type: "boolean" },
      json: { type: "boolean", short: "j" },
      for: { type: "string" },
      enable: { type: "boolean" },
      ...COMMAND_LOG_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const broker = values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db";
  const seconds = values.for === undefined ? undefined : Number(values.for);
  if (seconds !== undefined && !(seconds > 0))
    throw new Error(`--for takes seconds, not "${values.for}"`);
  // The broker's warnings (a lost connection) on stderr, as under the one-shot commands.
  const logger = commandLogger(values);
  return withBroadcast(
    broker,
    async (broadcast) => {
      const names = new Map<string, string>();
      const view = values.dump ? undefined : new FleetView(process.stdout);
      const subscription = await receiveEvents(broadcast, (event) => {
        if (view) view.add(event);
        else if (values.json) process.stdout.write(`${JSON.stringify(event)}\n`);
        else process.stdout.write(`${formatEvent(event, names)}\n`);
      });
      if (values.enable) {
        const { castControl } = await import("@celery-ts/core");
        await castControl(broadcast, "enable_events");
      }
      if (!view) process.stderr.write("-> celery-ts events: listening (Ctrl-C to stop)\n");
      const timer = view && setInterval(() => view.render(), 1000);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
        if (seconds !== undefined) setTimeout(resolve, seconds * 1000);
      });
      clearInterval(timer);
      await subscription.close();
      view?.render();
      return 0;
    },
    logger,
  );
}
