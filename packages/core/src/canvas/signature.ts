import { CeleryTsError } from "../errors.ts";
import type { Signature } from "../task-message.ts";

/** Celery's names for the built-in tasks that canvas types stand for. */
export const CANVAS_TASK = {
  chain: "celery.chain",
  group: "celery.group",
  chord: "celery.chord",
  chunks: "celery.chunks",
  xmap: "celery.map",
  xstarmap: "celery.starmap",
  chordUnlock: "celery.chord_unlock",
} as const;

/** A signature dict, with every field Celery 5.2 writes, in its order. */
export function createSignature(
  task: string,
  args: readonly unknown[] = [],
  kwargs: Record<string, unknown> = {},
  options: Record<string, unknown> = {},
  {
    subtaskType = null,
    immutable = false,
  }: { subtaskType?: string | null; immutable?: boolean } = {},
): Signature {
  return {
    task,
    args: [...args],
    kwargs: { ...kwargs },
    options: { ...options },
    subtask_type: subtaskType,
    immutable,
    chord_size: null,
  };
}

/** A deep copy: applying a signature never changes the one it was given. */
export function cloneSignature(sig: Signature): Signature {
  // Plain data (what signatures hold) is copied by hand, several times faster than
  // structuredClone; anything else (a cycle, a Date, a class) takes structuredClone's copy.
  try {
    return copyPlain(sig, 0) as Signature;
  } catch (error) {
    if (error !== NOT_PLAIN) throw error;
    return structuredClone(sig);
  }
}

/** Thrown by copyPlain for what it leaves to structuredClone. */
const NOT_PLAIN = Symbol("not plain data");
/** Deeper than this is taken for a cycle (structuredClone keeps it, and the encoder refuses it). */
const MAX_PLAIN_DEPTH = 64;

function copyPlain(value: unknown, depth: number): unknown {
  if (typeof value !== "object" || value === null) {
    if (typeof value === "function" || typeof value === "symbol") throw NOT_PLAIN;
    return value;
  }
  if (depth > MAX_PLAIN_DEPTH) throw NOT_PLAIN;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (Array.isArray(value) && proto === Array.prototype) {
    const copy: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw NOT_PLAIN; // a hole: structuredClone keeps it
      copy[i] = copyPlain(value[i], depth + 1);
    }
    return copy;
  }
  if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
  const copy: Record<string, unknown> = {};
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    // Assigning "__proto__" would set the copy's prototype: structuredClone copies it as a key.
    if (key === "__proto__") throw NOT_PLAIN;
    copy[key] = copyPlain((value as Record<string, unknown>)[key], depth + 1);
  }
  return copy;
}

/** Reads a signature dict from a message or an option; throws MALFORMED_MESSAGE when it is not one. */
export function asSignature(value: unknown, where: string): Signature {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformedSignature(where, "is not an object");
  }
  const raw = value as Record<string, unknown>;
  if (typeof raw.task !== "string") throw malformedSignature(where, "has no task name");
  const args = raw.args ?? [];
  const kwargs = raw.kwargs ?? {};
  const options = raw.options ?? {};
  if (!Array.isArray(args)) throw malformedSignature(where, "has args that are not a list");
  if (!isRecord(kwargs)) throw malformedSignature(where, "has kwargs that are not an object");
  if (!isRecord(options)) throw malformedSignature(where, "has options that are not an object");
  return {
    ...raw,
    task: raw.task,
    args,
    kwargs,
    options,
    subtask_type: typeof raw.subtask_type === "string" ? raw.subtask_type : null,
    immutable: raw.immutable === true,
    chord_size: typeof raw.chord_size === "number" ? raw.chord_size : null,
  };
}

/** An option that Celery keeps as a signature or a list of them (`link`, `link_error`). */
export function signatureList(value: unknown, where: string): Signature[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((item, i) => asSignature(item, `${where}[${i}]`));
}

/** The members of a group signature (`kwargs.tasks`). */
export function groupTasks(sig: Signature): Signature[] {
  const tasks = sig.kwargs.tasks;
  if (!Array.isArray(tasks)) throw malformedSignature(`group ${sig.task}`, "has no tasks list");
  return tasks.map((task, i) => asSignature(task, `group member ${i}`));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function malformedSignature(where: string, what: string): CeleryTsError {
  return new CeleryTsError("MALFORMED_MESSAGE", `the signature in ${where} ${what}`);
}
