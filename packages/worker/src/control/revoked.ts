import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { withExceptionArgs } from "@celery-ts/core";

/** Celery's `REVOKES_MAX`: the most revoked ids a worker remembers. */
export const DEFAULT_MAX_REVOKED = 50_000;
/** Celery's `REVOKE_EXPIRES`: seconds a revoked id is remembered. */
export const DEFAULT_REVOKED_EXPIRES = 10_800;
/** 2001-09-09 in ms: an earlier "time" is a monotonic clock's (seconds since boot), not a date. */
const WALL_CLOCK_FLOOR_MS = 1e12;

export interface RevokedSetOptions {
  /** @default 50_000 */
  maxSize?: number;
  /** Seconds an id is remembered. @default 10_800 (3 hours) */
  expires?: number;
  /** A file to keep the ids in across restarts (Celery's `--statedb`). */
  statePath?: string;
  /** Reports a state file that cannot be read or written. */
  onError?: (message: string, error: unknown) => void;
}

/**
 * The ids of revoked tasks, oldest first, bounded in number and age as Celery's `LimitedSet`
 * is; optionally kept in a JSON file so that a restarted worker still refuses them.
 */
export class RevokedSet {
  readonly #ids = new Map<string, number>();
  readonly #maxSize: number;
  readonly #expiresMs: number;
  readonly #path: string | undefined;
  readonly #onError: RevokedSetOptions["onError"];
  #saveTimer: NodeJS.Timeout | undefined;

  constructor(options: RevokedSetOptions = {}) {
    this.#maxSize = options.maxSize ?? DEFAULT_MAX_REVOKED;
    this.#expiresMs = (options.expires ?? DEFAULT_REVOKED_EXPIRES) * 1000;
    this.#path = options.statePath;
    this.#onError = options.onError;
    if (this.#path) this.#load(this.#path);
  }

  get size(): number {
    this.#purge();
    return this.#ids.size;
  }

  has(id: string): boolean {
    const at = this.#ids.get(id);
    return at !== undefined && Date.now() - at < this.#expiresMs;
  }

  add(ids: Iterable<string>, at = Date.now()): void {
    for (const id of ids) {
      this.#ids.delete(id);
      this.#ids.set(id, at);
    }
    this.#purge();
    this.#scheduleSave();
  }

  /**
   * Ids another worker knows, with the time it revoked each (ms since the epoch). A merge never
   * makes a known id older: the sender's clock may differ, and forgetting a revoke runs the task.
   * A time that is not a wall-clock time (Python Celery's `LimitedSet` stamps `time.monotonic()`,
   * seconds since its machine booted) cannot be compared, so the id counts as revoked now.
   */
  merge(entries: Iterable<readonly [id: string, at: number]>): void {
    const now = Date.now();
    for (const [id, stamp] of entries) {
      const at =
        Number.isFinite(stamp) && stamp >= WALL_CLOCK_FLOOR_MS ? Math.min(stamp, now) : now;
      const known = this.#ids.get(id);
      if (known !== undefined && known >= at) continue;
      this.#ids.delete(id);
      this.#ids.set(id, at);
    }
    this.#purge();
    this.#scheduleSave();
  }

  /** The ids, oldest first. */
  ids(): string[] {
    this.#purge();
    return [...this.#ids.keys()];
  }

  /**
   * `{id: time in seconds}`, as Celery's `LimitedSet._data` travels in mingle. Python's
   * `LimitedSet.update()` refuses a time that is not a float, so none is a whole number.
   */
  entries(): Record<string, number> {
    this.#purge();
    const seconds = (at: number) => (Number.isInteger(at / 1000) ? (at + 0.5) / 1000 : at / 1000);
    return Object.fromEntries([...this.#ids].map(([id, at]) => [id, seconds(at)]));
  }

  /** Writes the state file now (at shutdown). */
  flush(): void {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    if (!this.#path) return;
    try {
      mkdirSync(dirname(this.#path), { recursive: true });
      const temp = `${this.#path}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify({ version: 1, revoked: [...this.#ids] }));
      renameSync(temp, this.#path);
    } catch (error) {
      this.#onError?.(`could not write the state file ${this.#path}`, error);
    }
  }

  #purge(): void {
    const cutoff = Date.now() - this.#expiresMs;
    for (const [id, at] of this.#ids) if (at < cutoff) this.#ids.delete(id);
    for (const id of this.#ids.keys()) {
      if (this.#ids.size <= this.#maxSize) break;
      this.#ids.delete(id);
    }
  }

  #scheduleSave(): void {
    if (!this.#path || this.#saveTimer) return;
    this.#saveTimer = setTimeout(() => this.flush(), 100);
    this.#saveTimer.unref();
  }

  #load(path: string): void {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        this.#onError?.(`could not read the state file ${path}`, error);
      }
      return;
    }
    try {
      const state = JSON.parse(text) as { revoked?: unknown };
      if (!Array.isArray(state.revoked)) throw new Error("no 'revoked' list");
      for (const entry of state.revoked) {
        if (Array.isArray(entry) && typeof entry[0] === "string" && typeof entry[1] === "number") {
          this.#ids.set(entry[0], entry[1]);
        }
      }
      this.#purge();
    } catch (error) {
      this.#onError?.(
        `the state file ${path} is not a celery-ts state file; starting empty`,
        error,
      );
    }
  }
}

/** Celery's `TaskRevokedError`, stored for a revoked, expired or terminated task. */
export function revokedError(reason: "revoked" | "expired" | "terminated"): Error {
  const error = new Error(reason);
  error.name = "TaskRevokedError";
  return withExceptionArgs(error, [reason]);
}
