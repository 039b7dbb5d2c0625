import { commandArguments, commandList, COMMAND_SPECS } from "./command-args.ts";
import { parseRemoteArgs, REMOTE_USAGE, runRemote } from "./remote.ts";

const USAGE = `Usage: celery-ts inspect <method> [args...] [options]

Asks the workers (Python Celery ones too) through the broker's remote control.

Methods:
${commandList("inspect")}

${REMOTE_USAGE}`;

/** `celery-ts inspect <method>`: as `celery inspect`. */
export async function run(argv: string[]): Promise<number> {
  const args = parseRemoteArgs(argv);
  const [method, ...rest] = args.positionals;
  if (args.help || method === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return method === undefined && !args.help ? 2 : 0;
  }
  if (COMMAND_SPECS[method]?.kind !== "inspect") {
    throw new Error(`unknown inspect method "${method}"\n\n${USAGE}`);
  }
  return runRemote(args, method, commandArguments(method, rest));
}
