#!/usr/bin/env node
// The `celery-ts` command: checks the Node version, then hands the arguments to one subcommand.
// Each subcommand lives in src/cli/<command>.ts and is registered with one line in COMMANDS.
import { createRequire } from "node:module";
import { isCeleryTsError } from "@celery-ts/core";
import { beatCommand } from "./cli/beat.ts";
import { WORKER_USAGE, workerCommand } from "./cli/worker.ts";

interface Command {
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(argv: string[]): Promise<number> | number;
  /** One line for `celery-ts --help`. */
  summary: string;
}

/** A command whose module is loaded only when it runs. */
const lazy =
  (load: () => Promise<{ run(argv: string[]): Promise<number> }>) =>
  async (argv: string[]): Promise<number> =>
    (await load()).run(argv);

const COMMANDS: Record<string, Command> = {
  worker: { run: workerCommand, summary: "run the tasks an app module exports" },
  beat: { run: beatCommand, summary: "send periodic tasks; run list|add|remove|pause|resume" },
  inspect: { run: lazy(() => import("./cli/inspect.ts")), summary: "ask workers what they do" },
  control: { run: lazy(() => import("./cli/control.ts")), summary: "tell workers what to do" },
  status: { run: lazy(() => import("./cli/status.ts")), summary: "list the workers online" },
  purge: { run: lazy(() => import("./cli/purge.ts")), summary: "delete the waiting messages" },
  "dead-letters": {
    run: lazy(() => import("./cli/dead-letters.ts")),
    summary: "list, replay or purge the rejected messages",
  },
  result: { run: lazy(() => import("./cli/result.ts")), summary: "show a task's result" },
  call: { run: lazy(() => import("./cli/call.ts")), summary: "send a task by name" },
  events: { run: lazy(() => import("./cli/events.ts")), summary: "watch the fleet's events" },
  dashboard: {
    run: lazy(() => import("./cli/dashboard.ts")),
    summary: "the web dashboard (@celery-ts/dashboard)",
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(
    ([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`,
  );
  return `Usage: celery-ts <command> [options]   (celery-ts <command> --help for its options)

Commands:
${lines.join("\n")}

  --version  print the version of celery-ts
  --help     this text

${WORKER_USAGE}`;
}

/** The first Node that runs .ts app modules directly (type stripping on by default). */
function checkNode(): void {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return;
  throw new Error(
    `celery-ts needs Node >= 22.18 (this is Node ${process.versions.node}): install Node 24 ` +
      "(for example `nvm install 24`) and run the command again",
  );
}

async function main(argv: string[]): Promise<number> {
  checkNode();
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V" || name === "version") {
    // ../package.json from both src/cli.ts and dist/cli.js.
    const { version } = createRequire(import.meta.url)("../package.json") as { version: string };
    process.stdout.write(`celery-ts ${version} (Node ${process.versions.node})\n`);
    return 0;
  }
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) throw new Error(`unknown command "${name}"\n\n${usage()}`);
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message =
      isCeleryTsError(error) || error instanceof Error ? error.message : String(error);
    process.stderr.write(`celery-ts: ${message}\n`);
    process.exit(isCeleryTsError(error, "CONFIG") ? 78 : 1);
  },
);
