import { parseArgs } from "node:util";
import { resolveTransport } from "@celery-ts/core";
import { COMMAND_LOG_OPTIONS, COMMAND_LOG_USAGE, commandLogger } from "./log-options.ts";

const USAGE = `Usage: celery-ts purge [options]

Deletes every waiting message of the queues, as \`celery purge\`. Running and reserved tasks
are not touched; dead letters stay.

Options:
  -b, --broker <url>          broker URL [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
  -Q, --queues <a,b>          queues to purge [default celery]
  -f, --force                 do not ask for confirmation (required without a terminal)
${COMMAND_LOG_USAGE}
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      broker: { type: "string", short: "b" },
      queues: { type: "string", short: "Q" },
      force: { type: "boolean", short: "f" },
      ...COMMAND_LOG_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const broker = values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db";
  const queues = (values.queues ?? "celery")
    .split(",")
    .map((q) => q.trim())
    .filter(Boolean);
  if (!values.force) {
    if (!process.stdin.isTTY) {
      throw new Error("purge deletes messages for good: add --force to confirm");
    }
    process.stdout.write(
      `You are about to delete every waiting message of ${queues.join(", ")}. Continue? [y/N] `,
    );
    const answer = await new Promise<string>((resolve) =>
      process.stdin.once("data", (data) => resolve(String(data).trim())),
    );
    process.stdin.pause();
    if (!/^y(es)?$/i.test(answer)) return 1;
  }
  const transport = await resolveTransport(broker, { logger: commandLogger(values) });
  try {
    let total = 0;
    for (const queue of queues) total += await transport.purge(queue);
    const n = queues.length;
    process.stdout.write(
      `Purged ${total} ${total === 1 ? "message" : "messages"} from ${n} known task ${n === 1 ? "queue" : "queues"}.\n`,
    );
    return 0;
  } finally {
    await transport.close();
  }
}
