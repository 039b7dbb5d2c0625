import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CeleryTsError } from "@celery-ts/core";
import type { BeatEntry } from "./beat-entry.ts";

function configError(path: string, message: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("CONFIG", `beat schedule ${path}: ${message}`, { pkg: "worker", cause });
}

/**
 * The entries a schedule holds: an array of entries, `{ entries: [...] }`, or an object of entries
 * by name, as Celery's `beat_schedule` is (`{ "cleanup": { "task": ..., "every": 60 } }`).
 */
export function entriesOf(value: unknown, path = "(given)"): BeatEntry[] {
  const container = value as { entries?: unknown } | null;
  const list = Array.isArray(value)
    ? value
    : Array.isArray(container?.entries)
      ? container.entries
      : typeof value === "object" && value !== null
        ? Object.entries(value as Record<string, object>).map(([name, entry]) => ({
            name,
            ...entry,
          }))
        : undefined;
  if (!list) {
    throw configError(path, "expected an array of entries, or an object of entries by name");
  }
  return list as BeatEntry[];
}

/**
 * Reads a schedule file: JSON (`.json`), or a module (`.js`, `.mjs`, `.ts` on Node >= 22.18)
 * whose default export, `entries` or `schedule` export is a schedule. Entries are checked when the
 * beat is created.
 */
export async function loadSchedule(path: string): Promise<BeatEntry[]> {
  const full = resolve(path);
  if (path.endsWith(".json")) {
    let text: string;
    try {
      text = await readFile(full, "utf8");
    } catch (cause) {
      throw configError(path, `cannot read it (${(cause as Error).message})`, cause);
    }
    try {
      return entriesOf(JSON.parse(text), path);
    } catch (cause) {
      if (cause instanceof CeleryTsError) throw cause;
      throw configError(path, `is not JSON (${(cause as Error).message})`, cause);
    }
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(full).href)) as Record<string, unknown>;
  } catch (cause) {
    throw configError(path, `could not import it: ${(cause as Error).message}`, cause);
  }
  const value = module.default ?? module.entries ?? module.schedule;
  if (value === undefined) {
    throw configError(path, "exports no schedule: export default (or entries) an array of entries");
  }
  return entriesOf(value, path);
}
