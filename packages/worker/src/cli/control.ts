import { commandArguments, commandList, COMMAND_SPECS } from "./command-args.ts";
import { parseRemoteArgs, REMOTE_USAGE, runRemote } from "./remote.ts";

const USAGE = `Usage: celery-ts control <method> [args...] [options]

Steers the workers (Python Celery ones too) through the broker's remote control.

Methods:
${commandList("control")}

${REMOTE_USAGE}
      --terminate             (revoke) also stop the task if it is running
      --signal <name>         (revoke --terminate) the signal Python workers send [default SIGTERM]`;

/** `celery-ts control <method>`: as `celery control`. */
export async function run(argv: string[]): Promise<number> {
  const args = parseRemoteArgs(argv, {
    terminate: { type: "boolean" },
    signal: { type: "string" },
  });
  const [method, ...rest] = args.positionals;
  if (args.help || method === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return method === undefined && !args.help ? 2 : 0;
  }
  if (COMMAND_SPECS[method]?.kind !== "control") {
    throw new Error(`unknown control method "${method}"\n\n${USAGE}`);
  }
  const kwargs = commandArguments(method, rest);
  if (method === "revoke" && args.values.terminate === true) {
    kwargs.terminate = true;
    kwargs.signal = typeof args.values.signal === "string" ? args.values.signal : "SIGTERM";
  }
  return runRemote(args, method, kwargs);
}
