import { parseRemoteArgs, REMOTE_USAGE, runRemote } from "./remote.ts";

const USAGE = `Usage: celery-ts status [options]

Lists the workers that answer a ping (Python Celery ones too), as \`celery status\`.

${REMOTE_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const args = parseRemoteArgs(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  return runRemote(args, "ping", {});
}
