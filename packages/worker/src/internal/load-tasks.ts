import { existsSync, readFileSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CeleryTsError, type TaskDefinition } from "@celery-ts/core";

function isTaskDefinition(value: unknown): value is TaskDefinition {
  const candidate = value as Partial<TaskDefinition> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.name === "string" &&
    typeof candidate.run === "function" &&
    typeof candidate.options === "object"
  );
}

/** The package.json nearest to `file`, and its `type` ("commonjs" when it names none). */
function nearestPackage(file: string): { path: string; type: string } | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const path = join(dir, "package.json");
    if (existsSync(path)) {
      try {
        const { type } = JSON.parse(readFileSync(path, "utf8")) as { type?: unknown };
        return { path, type: typeof type === "string" ? type : "commonjs" };
      } catch {
        return undefined;
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Node read an ES module (import/export) as CommonJS: what the user must change, or undefined. */
function commonJsAdvice(file: string, error: unknown): string | undefined {
  const message = (error as Error)?.message ?? "";
  if (!(error instanceof SyntaxError)) return undefined;
  if (!/import statement outside a module|Unexpected token 'export'/.test(message))
    return undefined;
  const ext = extname(file);
  if (ext !== ".ts" && ext !== ".js") return undefined;
  const pkg = nearestPackage(file);
  const where = pkg
    ? `${pkg.path} declares "type": "${pkg.type}"`
    : "no package.json says otherwise";
  const esm = ext === ".ts" ? ".mts" : ".mjs";
  return (
    `${file} uses import/export, but Node loads it as CommonJS (${where}; \`npm init\` writes ` +
    `"type": "commonjs"). Set "type": "module" in ${pkg?.path ?? "your package.json"}, or name ` +
    `the module ${file.slice(0, -ext.length)}${esm}`
  );
}

/**
 * Why the app module did not load: its file and line, and the stack (Node puts the source line
 * and a caret at the top of a SyntaxError's stack).
 */
function importError(modulePath: string, file: string, cause: unknown): CeleryTsError {
  const advice = commonJsAdvice(file, cause);
  if (advice !== undefined) {
    return new CeleryTsError("CONFIG", `could not import the tasks module: ${advice}`, {
      pkg: "worker",
      cause,
    });
  }
  const error = cause as Error;
  const stack = typeof error?.stack === "string" ? error.stack : String(cause);
  const missing = (error as NodeJS.ErrnoException)?.code === "ERR_MODULE_NOT_FOUND";
  const detail = missing
    ? error.message
    : stack.includes(error.message)
      ? stack
      : `${error.message}\n${stack}`;
  return new CeleryTsError(
    "CONFIG",
    `could not import the tasks module ${modulePath}:\n${detail.trimEnd()}`,
    { pkg: "worker", cause },
  );
}

/** Imports the app module and returns every task it exports (directly or in an exported array). */
export async function loadTasks(modulePath: string): Promise<TaskDefinition[]> {
  const file = resolve(modulePath);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (cause) {
    throw importError(modulePath, file, cause);
  }
  const tasks = new Set<TaskDefinition>();
  for (const value of Object.values(module)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (isTaskDefinition(item)) tasks.add(item);
    }
  }
  if (tasks.size === 0) {
    throw new CeleryTsError(
      "CONFIG",
      `${modulePath} exports no tasks: export what defineTask() returns`,
      { pkg: "worker" },
    );
  }
  return [...tasks];
}
