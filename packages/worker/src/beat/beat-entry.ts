import { CeleryTsError } from "@celery-ts/core";
import { nextCrontab, parseCrontab, type Crontab, type CrontabFields } from "./crontab.ts";
import { checkTimeZone } from "./zoned-time.ts";

/** What happens to ticks missed for longer than the grace (beat was down, or the entry paused). */
export type CatchUp =
  /** Send one message now for all of them, then go on with the schedule (Celery's behaviour). */
  | "once"
  /** Send nothing for them; the next tick is the next one to come. */
  | "skip";

/** How the task is sent, as in `apply_async`. */
export interface BeatSendOptions {
  /** @default "celery" */
  queue?: string;
  /** Celery's priority, 0-9. @default undefined (the broker's default) */
  priority?: number;
  /** Seconds after sending after which a worker revokes the task instead of running it. */
  expires?: number;
}

/**
 * One periodic task. Exactly one of `every`, `crontab` and `at` says when. Plain data, so that the
 * same shape serves code, a JSON config file, the store and the CLI.
 */
export interface BeatEntry {
  /** Unique within the schedule; the key of its tick record. */
  name: string;
  /** The task name, as workers (Python or TypeScript) registered it. */
  task: string;
  /**
   * Every this many seconds, at the multiples of it since the Unix epoch, so every instance agrees
   * where the ticks fall (every 60: at each whole minute; every 3600: on the hour, UTC).
   */
  every?: number;
  /** A five-field string (`"30 2 * * *"`) or Celery's `crontab()` fields. */
  crontab?: string | CrontabFields;
  /** Once, at this time (an ISO-8601 string with a zone, or epoch milliseconds). */
  at?: string | number;
  /** The IANA time zone of `crontab`. @default the beat's `timezone` ("UTC") */
  timezone?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: BeatSendOptions;
  /**
   * Spread sends over this many seconds after each tick: a per-tick delay every instance computes
   * alike, so jitter never makes a tick run twice. @default 0
   */
  jitter?: number;
  /** Ticks missed by more than the grace. @default "once" */
  catchUp?: CatchUp;
}

/** An entry checked and parsed, ready to compute ticks. */
export interface ParsedEntry {
  entry: BeatEntry;
  /** The first tick after `after` (epoch ms), or undefined: no more ticks. */
  next(after: number): number | undefined;
  /** The latest tick at or before `time`, given the last one recorded, for catching up. */
  latest(time: number): number;
}

const ENTRY_KEYS = new Set([
  "name",
  "task",
  "every",
  "crontab",
  "at",
  "timezone",
  "args",
  "kwargs",
  "options",
  "jitter",
  "catchUp",
]);

function bad(name: string, message: string): CeleryTsError {
  return new CeleryTsError("CONFIG", `beat entry ${JSON.stringify(name)}: ${message}`, {
    pkg: "worker",
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkOptions(name: string, options: unknown): void {
  if (options === undefined) return;
  if (!isRecord(options)) throw bad(name, "options must be an object");
  for (const key of Object.keys(options)) {
    if (!["queue", "priority", "expires"].includes(key)) {
      throw bad(name, `unknown option ${JSON.stringify(key)} (known: queue, priority, expires)`);
    }
  }
  const { queue, priority, expires } = options;
  if (queue !== undefined && (typeof queue !== "string" || queue === "")) {
    throw bad(name, "options.queue must be a queue name");
  }
  if (
    priority !== undefined &&
    !(Number.isInteger(priority) && (priority as number) >= 0 && (priority as number) <= 255)
  ) {
    throw bad(name, "options.priority must be a whole number 0-9 (Celery's range)");
  }
  if (
    expires !== undefined &&
    !(typeof expires === "number" && expires > 0 && Number.isFinite(expires))
  ) {
    throw bad(name, "options.expires must be a number of seconds > 0");
  }
}

/** The epoch ms of an `at` value, or a CONFIG error. */
function instantOfAt(name: string, at: string | number): number {
  const time = typeof at === "number" ? at : Date.parse(at);
  if (typeof at === "string" && !/(Z|[+-]\d\d:?\d\d)$/i.test(at.trim())) {
    throw bad(name, `at ${JSON.stringify(at)} needs a zone (Z or +01:00): it is one instant`);
  }
  if (!Number.isFinite(time)) throw bad(name, `at ${JSON.stringify(at)} is not a date`);
  return time;
}

/**
 * Checks an entry (from code, a file, the store or the CLI) and prepares its schedule; a CONFIG
 * error names the entry and what to fix. `timezone` is the beat's default zone.
 */
export function parseEntry(input: unknown, timezone = "UTC"): ParsedEntry {
  if (!isRecord(input)) throw bad("?", "an entry must be an object with name, task and a schedule");
  const name = typeof input.name === "string" && input.name !== "" ? input.name : undefined;
  if (!name) throw bad("?", "name must be a non-empty string");
  for (const key of Object.keys(input)) {
    if (!ENTRY_KEYS.has(key)) {
      throw bad(
        name,
        `unknown field ${JSON.stringify(key)} (known: ${[...ENTRY_KEYS].join(", ")})`,
      );
    }
  }
  const entry = input as unknown as BeatEntry;
  if (typeof entry.task !== "string" || entry.task === "")
    throw bad(name, "task must be a task name");
  const kinds = (["every", "crontab", "at"] as const).filter((kind) => entry[kind] !== undefined);
  if (kinds.length !== 1) throw bad(name, "give exactly one of every (seconds), crontab and at");
  if (entry.args !== undefined && !Array.isArray(entry.args))
    throw bad(name, "args must be an array");
  if (entry.kwargs !== undefined && !isRecord(entry.kwargs))
    throw bad(name, "kwargs must be an object");
  checkOptions(name, entry.options);
  if (
    entry.jitter !== undefined &&
    !(typeof entry.jitter === "number" && entry.jitter >= 0 && Number.isFinite(entry.jitter))
  ) {
    throw bad(name, "jitter must be a number of seconds >= 0");
  }
  if (entry.catchUp !== undefined && entry.catchUp !== "once" && entry.catchUp !== "skip") {
    throw bad(name, `catchUp must be "once" or "skip", not ${JSON.stringify(entry.catchUp)}`);
  }
  const zone = entry.timezone ?? timezone;
  checkTimeZone(zone, `beat entry ${JSON.stringify(name)}`);

  if (entry.every !== undefined) {
    const every = entry.every;
    if (!(typeof every === "number" && Number.isFinite(every) && every >= 0.001)) {
      throw bad(name, "every must be a number of seconds (at least 0.001)");
    }
    const period = Math.round(every * 1000);
    return {
      entry,
      next: (after) => (Math.floor(after / period) + 1) * period,
      latest: (time) => Math.floor(time / period) * period,
    };
  }
  if (entry.crontab !== undefined) {
    let cron: Crontab;
    try {
      cron = parseCrontab(entry.crontab);
    } catch (error) {
      throw bad(name, (error as Error).message.replace(/^\[celery-ts:worker\] /, ""));
    }
    return {
      entry,
      next: (after) => nextCrontab(cron, after, zone),
      // A crontab's ticks are instants of their own: catching up moves the record to `time`.
      latest: (time) => time,
    };
  }
  const at = instantOfAt(name, entry.at!);
  return {
    entry,
    next: (after) => (after < at ? at : undefined),
    latest: () => at,
  };
}
