/**
 * `celery-ts dashboard`: the web dashboard lives in its own package, @celery-ts/dashboard, so
 * that workers do not carry it. This command loads it when it is installed: beside the project
 * the command runs in, or beside the worker.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const PACKAGE = "@celery-ts/dashboard";

function locate(): string {
  for (const base of [join(process.cwd(), "package.json"), import.meta.url]) {
    try {
      return createRequire(base).resolve(PACKAGE);
    } catch {
      // not there: try the next place
    }
  }
  throw new Error(`celery-ts dashboard needs the ${PACKAGE} package: npm install ${PACKAGE}`);
}

export async function run(argv: string[]): Promise<number> {
  const dashboard = (await import(pathToFileURL(locate()).href)) as {
    run(argv: string[]): Promise<number>;
  };
  return dashboard.run(argv);
}
