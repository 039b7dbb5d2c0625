import { parseArgs } from "node:util";
import { isReadyState, resolveBackend, TaskState } from "@celery-ts/core";
import { COMMAND_LOG_OPTIONS, COMMAND_LOG_USAGE, commandLogger } from "./log-options.ts";

const USAGE = `Usage: celery-ts result <task id> [options]

Prints a task's result, as \`celery result\`: waits for it unless --timeout 0.

Options:
      --backend <url>         result backend URL [env CELERY_RESULT_BACKEND]
  -t, --timeout <s>           seconds to wait for the task to finish [default: no limit]
      --traceback             print the traceback of a failed task instead of its error
${COMMAND_LOG_USAGE}
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      backend: { type: "string" },
      timeout: { type: "string", short: "t" },
      traceback: { type: "boolean" },
      ...COMMAND_LOG_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  const [id] = positionals;
  if (values.help || id === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const url = values.backend ?? process.env.CELERY_RESULT_BACKEND;
  if (!url) throw new Error("no result backend: give --backend <url> or set CELERY_RESULT_BACKEND");
  const timeout = values.timeout === undefined ? 365 * 86_400 : Number(values.timeout);
  if (!(timeout >= 0)) throw new Error(`--timeout takes seconds, not "${values.timeout}"`);
  const backend = await resolveBackend(url, { logger: commandLogger(values) });
  try {
    await backend.connect();
    const meta = timeout === 0 ? await backend.get(id) : await backend.waitFor(id, { timeout });
    const status = meta?.status ?? TaskState.PENDING;
    if (!meta || !isReadyState(status)) {
      process.stdout.write(`${status}\n`);
      return 1;
    }
    if (status === TaskState.SUCCESS) {
      process.stdout.write(`${JSON.stringify(meta.result)}\n`);
      return 0;
    }
    if (values.traceback && meta.traceback) process.stdout.write(`${meta.traceback}\n`);
    else {
      const info = (meta.result ?? {}) as { exc_type?: unknown; exc_message?: unknown };
      const message = Array.isArray(info.exc_message) ? info.exc_message.join(", ") : "";
      process.stdout.write(`${status}: ${String(info.exc_type ?? "")}: ${message}\n`);
    }
    return 1;
  } finally {
    await backend.close();
  }
}
