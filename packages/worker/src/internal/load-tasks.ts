import { resolve } from "node:path";
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

/** Imports the app module and returns every task it exports (directly or in an exported array). */
export async function loadTasks(modulePath: string): Promise<TaskDefinition[]> {
  const url = pathToFileURL(resolve(modulePath)).href;
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (cause) {
    throw new CeleryTsError(
      "CONFIG",
      `could not import the tasks module ${modulePath}: ${(cause as Error).message}`,
      { pkg: "worker", cause },
    );
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
