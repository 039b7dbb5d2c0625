#!/usr/bin/env node
import { run } from "./cli.ts";

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `celery-ts dashboard: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  },
);
