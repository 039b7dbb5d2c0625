import { parseArgs } from "node:util";
import {
  deadLetterMethods,
  resolveTransport,
  type DeadLetter,
  type DeadLetterMethods,
  type Transport,
} from "@celery-ts/core";
import { COMMAND_LOG_OPTIONS, COMMAND_LOG_USAGE, commandLogger } from "./log-options.ts";

const USAGE = `Usage: celery-ts dead-letters <list|replay|purge> [options]

The messages the workers rejected (malformed, unknown task, over the size limit, RejectTask),
kept by the broker with the reason and the task id, oldest first.

  list     show them: when, task id, reason (--json: one JSON object a line, with the message)
  replay   put them back on their queue, as new messages, and remove them from the dead letters
  purge    delete them for good

Options:
  -b, --broker <url>     broker URL [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
  -Q, --queues <a,b>     queues whose dead letters [default celery]
      --task-id <id>     only the dead letters of this task id
      --limit <n>        at most n per queue, oldest first
      --json             list: JSON lines
  -f, --force            replay, purge: do not ask (required without a terminal)
${COMMAND_LOG_USAGE}
  -h, --help`;

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new Error("this changes the dead letters for good: add --force to confirm");
  }
  process.stdout.write(`${question} [y/N] `);
  const answer = await new Promise<string>((resolve) =>
    process.stdin.once("data", (data) => resolve(String(data).trim())),
  );
  process.stdin.pause();
  return /^y(es)?$/i.test(answer);
}

function line(letter: DeadLetter, json: boolean): string {
  if (json) return JSON.stringify(letter);
  const when = new Date(letter.rejectedAt).toISOString();
  const kept = letter.raw === "" ? " (message not kept)" : "";
  return `${when}  ${letter.queue}  ${letter.taskId ?? "-"}  ${letter.reason}${kept}`;
}

/** The transport's dead-letter methods, or a clear error when it keeps none. */
function deadLetterApi(transport: Transport): DeadLetterMethods {
  const api = deadLetterMethods(transport);
  if (!api) {
    throw new Error(
      `the ${transport.name} broker keeps no dead letters here (turned off with ` +
        "?dead_letters=off, or a driver without them): rejected messages were dropped and logged",
    );
  }
  return api;
}

/** `celery-ts dead-letters list|replay|purge`. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      broker: { type: "string", short: "b" },
      queues: { type: "string", short: "Q" },
      "task-id": { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean" },
      force: { type: "boolean", short: "f" },
      ...COMMAND_LOG_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
  });
  const [action, ...extra] = positionals;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!["list", "replay", "purge"].includes(action ?? "") || extra.length > 0) {
    throw new Error(`dead-letters takes list, replay or purge\n\n${USAGE}`);
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new Error(`--limit takes a whole number of 1 or more, not "${values.limit}"`);
  }
  const broker = values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db";
  const queues = (values.queues ?? "celery")
    .split(",")
    .map((q) => q.trim())
    .filter(Boolean);
  const selection = {
    ...(values["task-id"] !== undefined && { taskId: values["task-id"] }),
    ...(limit !== undefined && { limit }),
  };
  if (action !== "list" && !values.force) {
    const what = values["task-id"]
      ? `the dead letters of task ${values["task-id"]}`
      : "the dead letters";
    const verb = action === "replay" ? "put back on their queue" : "delete for good";
    if (
      !(await confirm(`${verb[0]!.toUpperCase()}${verb.slice(1)} ${what} of ${queues.join(", ")}?`))
    )
      return 1;
  }
  const transport = await resolveTransport(broker, { logger: commandLogger(values) });
  try {
    const api = deadLetterApi(transport);
    let total = 0;
    for (const queue of queues) {
      if (action === "list") {
        const letters = await api.list(queue, limit === undefined ? {} : { limit });
        const picked = letters.filter(
          (l) => selection.taskId === undefined || l.taskId === selection.taskId,
        );
        for (const letter of picked)
          process.stdout.write(`${line(letter, values.json ?? false)}\n`);
        total += picked.length;
      } else {
        total += await (action === "replay" ? api.replay : api.purge)(queue, selection);
      }
    }
    const noun = total === 1 ? "dead letter" : "dead letters";
    const done = { list: "listed", replay: "replayed", purge: "purged" }[action as "list"];
    if (!values.json) process.stdout.write(`${total} ${noun} ${done}.\n`);
    return 0;
  } finally {
    await transport.close();
  }
}
