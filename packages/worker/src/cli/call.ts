import { parseArgs } from "node:util";
import {
  createTaskMessage,
  encodeTaskMessage,
  parseCeleryDate,
  resolveTransport,
} from "@celery-ts/core";
import { COMMAND_LOG_OPTIONS, COMMAND_LOG_USAGE, commandLogger } from "./log-options.ts";

const USAGE = `Usage: celery-ts call <task name> [options]

Sends a task by name, as \`celery call\`, and prints its id. Any worker that registers the
name runs it, Python or TypeScript.

Options:
  -b, --broker <url>          broker URL [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
  -a, --args <json>           positional arguments, a JSON list  [default []]
  -k, --kwargs <json>         keyword arguments, a JSON object   [default {}]
      --queue <name>          the queue [default celery]
      --countdown <s>         run no sooner than this many seconds from now
      --eta <iso date>        run no sooner than this time
      --expires <s|iso date>  revoke it if it has not started by then
${COMMAND_LOG_USAGE}
  -h, --help`;

function json<T>(
  text: string | undefined,
  name: string,
  fallback: T,
  check: (v: unknown) => boolean,
): T {
  if (text === undefined) return fallback;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`--${name} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!check(value))
    throw new Error(`--${name} must be a JSON ${Array.isArray(fallback) ? "list" : "object"}`);
  return value as T;
}

function when(text: string | undefined, name: string): Date | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return new Date(Date.now() + seconds * 1000);
  const date = parseCeleryDate(text);
  if (Number.isNaN(date.getTime()))
    throw new Error(`--${name} takes seconds or an ISO date, not "${text}"`);
  return date;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      broker: { type: "string", short: "b" },
      args: { type: "string", short: "a" },
      kwargs: { type: "string", short: "k" },
      queue: { type: "string" },
      countdown: { type: "string" },
      eta: { type: "string" },
      expires: { type: "string" },
      ...COMMAND_LOG_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  const [name] = positionals;
  if (values.help || name === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const broker = values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db";
  const args = json<unknown[]>(values.args, "args", [], Array.isArray);
  const kwargs = json<Record<string, unknown>>(
    values.kwargs,
    "kwargs",
    {},
    (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  );
  const eta = when(values.countdown, "countdown") ?? when(values.eta, "eta");
  const expires = when(values.expires, "expires");
  const queue = values.queue ?? "celery";
  const message = createTaskMessage({
    task: name,
    args,
    kwargs,
    ...(eta && { eta }),
    ...(expires && { expires }),
  });
  const transport = await resolveTransport(broker, { logger: commandLogger(values) });
  try {
    await transport.publish(encodeTaskMessage(message), {
      queue,
      ...(eta && { availableAt: eta.getTime() }),
    });
  } finally {
    await transport.close();
  }
  process.stdout.write(`${message.headers.id}\n`);
  return 0;
}
