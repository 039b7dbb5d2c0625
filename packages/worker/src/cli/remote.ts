import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  callControl,
  resolveBroadcast,
  type Broadcast,
  type ControlReply,
  type Logger,
} from "@celery-ts/core";
import { COMMAND_LOG_OPTIONS, COMMAND_LOG_USAGE, commandLogger } from "./log-options.ts";

/** Options every remote-control command takes, named as Celery's CLI names them. */
export const REMOTE_OPTIONS = {
  broker: { type: "string", short: "b" },
  timeout: { type: "string", short: "t" },
  destination: { type: "string", short: "d" },
  json: { type: "boolean", short: "j" },
  ...COMMAND_LOG_OPTIONS,
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const REMOTE_USAGE = `Options:
  -b, --broker <url>          broker URL [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
  -t, --timeout <s>           seconds to wait for replies [default 1]
  -d, --destination <a,b>     only these nodes
  -j, --json                  print the replies as JSON
${COMMAND_LOG_USAGE}
  -h, --help`;

export interface RemoteArgs {
  broker: string;
  timeout: number;
  destination: string[] | undefined;
  json: boolean;
  help: boolean;
  /** Where the broker's connection reports (`--log-level`, `--log-format`). */
  logger: Logger;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** Parses the common options (plus `extra`) and positionals. */
export function parseRemoteArgs(
  argv: string[],
  extra: ParseArgsConfig["options"] = {},
): RemoteArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...REMOTE_OPTIONS, ...extra },
    allowPositionals: true,
  });
  const v = values as Record<string, string | boolean | undefined>;
  const timeout = v.timeout === undefined ? 1 : Number(v.timeout);
  if (!(timeout > 0))
    throw new Error(`--timeout takes a number of seconds, not "${String(v.timeout)}"`);
  const destination =
    typeof v.destination === "string"
      ? v.destination
          .split(",")
          .map((d) => d.trim())
          .filter(Boolean)
      : undefined;
  return {
    broker:
      (typeof v.broker === "string" ? v.broker : undefined) ??
      process.env.CELERY_BROKER_URL ??
      "sqlite:///celery-ts.db",
    timeout,
    destination,
    json: v.json === true,
    logger: commandLogger(v),
    help: v.help === true,
    positionals,
    values: v,
  };
}

/** Opens the broker's broadcast, runs `work`, closes it. */
export async function withBroadcast<T>(
  broker: string,
  work: (broadcast: Broadcast) => Promise<T>,
  logger?: Logger,
): Promise<T> {
  const broadcast = await resolveBroadcast(broker, { ...(logger && { logger }) });
  try {
    await broadcast.connect();
    return await work(broadcast);
  } finally {
    await broadcast.close();
  }
}

/** Celery's exit code when no node answered (`EX_UNAVAILABLE`). */
export const EX_UNAVAILABLE = 69;

/** Sends a command, prints the replies as Celery's CLI does, returns the exit code. */
export async function runRemote(
  args: RemoteArgs,
  method: string,
  kwargs: Record<string, unknown>,
): Promise<number> {
  const replies = await withBroadcast(
    args.broker,
    (broadcast) =>
      callControl(broadcast, method, kwargs, {
        timeout: args.timeout,
        ...(args.destination && { destination: args.destination }),
      }),
    args.logger,
  );
  return printReplies(replies, args.json);
}

export function printReplies(replies: ControlReply[], json: boolean): number {
  if (replies.length === 0) {
    process.stderr.write("Error: No nodes replied within time constraint\n");
    return EX_UNAVAILABLE;
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(Object.assign({}, ...replies))}\n`);
    return 0;
  }
  const out: string[] = [];
  for (const reply of replies) {
    for (const [node, answer] of Object.entries(reply)) {
      const failed = typeof answer === "object" && answer !== null && "error" in answer;
      out.push(`->  ${node}: ${failed ? "ERROR" : "OK"}`);
      const body = pretty(answer);
      if (body) out.push(body.replace(/^/gm, "    "));
    }
  }
  const n = replies.length;
  out.push("", `${n} ${n === 1 ? "node" : "nodes"} online.`);
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

/** Celery's `pretty()`: `ok`/`error` answers as their text, lists as `* item`, the rest as JSON. */
function pretty(answer: unknown): string {
  if (answer === null || answer === undefined) return "";
  if (Array.isArray(answer)) {
    if (answer.length === 0) return "- empty -";
    return answer
      .map((item) => `* ${typeof item === "string" ? item : JSON.stringify(item)}`)
      .join("\n");
  }
  if (typeof answer === "object") {
    const record = answer as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 1 && (keys[0] === "ok" || keys[0] === "error")) {
      return `    ${String(record[keys[0]])}`;
    }
    return JSON.stringify(answer, null, 4);
  }
  return String(answer);
}
