import { encodeJson, isPlainJsonText, quote } from "../json.ts";

/**
 * Writes monitoring events as JSON text, byte for byte what `encodeJson` writes for
 * `{hostname, utcoffset, pid, clock, ...fields, timestamp, type}` (the event as Celery sends it),
 * straight from its parts: the constant head is written once per worker, and neither the event
 * object nor the generic encoder's bookkeeping is made per event. The pieces go into an array that
 * a batch joins once, so an event's text is never copied piece by piece. A worker with task events
 * on sends three events per task, so this is on the task path.
 */
export class EventJson {
  readonly #hostname: string;
  readonly #pid = process.pid;
  #utcoffset = Number.NaN;
  /** `{"hostname": ..., "utcoffset": ..., "pid": ..., "clock": `, for the current utcoffset. */
  #head = "";
  /** When the utcoffset is next looked at (it changes with daylight saving time). */
  #offsetCheck = 0;
  /** `, "key": ` of the field names seen (a few dozen at most in practice; bounded anyway). */
  readonly #keys = new Map<string, string>();
  /** `, "type": "<type>"}` of the event types seen. */
  readonly #tails = new Map<string, string>();

  constructor(hostname: string) {
    this.#hostname = hostname;
  }

  /**
   * Appends one event's text to `out`. Throws as `encodeJson` does for a field JSON cannot hold
   * (NaN, a function...), leaving `out` as it was.
   */
  write(
    out: string[],
    type: string,
    fields: Record<string, unknown>,
    clock: number,
    now: number,
  ): void {
    if (now >= this.#offsetCheck) this.#refreshHead(now);
    const mark = out.length;
    out.push(this.#head, String(clock));
    let fast: boolean;
    try {
      fast = this.#writeFields(out, fields);
    } catch (error) {
      out.length = mark;
      throw error;
    }
    if (fast) {
      out.push(', "timestamp": ', String(now / 1000), this.#tail(type));
      return;
    }
    out.length = mark;
    out.push(this.#generic(type, fields, clock, now));
  }

  /** The type's own fields; false when one is a head field that the generic way must place. */
  #writeFields(out: string[], fields: Record<string, unknown>): boolean {
    for (const key of Object.keys(fields)) {
      const value = fields[key];
      if (value === undefined) continue;
      if (HEAD_FIELDS.has(key)) {
        // A field that only repeats the head (task-started's pid) is written there already;
        // one that changes it or moves it takes the generic way, which keeps the object's order.
        if (key === "pid" && value === this.#pid) continue;
        return false;
      }
      out.push(this.#key(key));
      writeField(out, value);
    }
    return true;
  }

  #generic(type: string, fields: Record<string, unknown>, clock: number, now: number): string {
    return encodeJson({
      hostname: this.#hostname,
      utcoffset: this.#utcoffset,
      pid: this.#pid,
      clock,
      ...fields,
      timestamp: now / 1000,
      type,
    });
  }

  #refreshHead(now: number): void {
    this.#offsetCheck = now + OFFSET_CHECK_MS;
    const offset = utcOffsetHours();
    if (offset === this.#utcoffset) return;
    this.#utcoffset = offset;
    this.#head = `{"hostname": ${quote(this.#hostname)}, "utcoffset": ${String(offset)}, "pid": ${String(this.#pid)}, "clock": `;
  }

  #key(key: string): string {
    let text = this.#keys.get(key);
    if (text === undefined) {
      text = `, ${quote(key)}: `;
      if (this.#keys.size < CACHE_LIMIT) this.#keys.set(key, text);
    }
    return text;
  }

  #tail(type: string): string {
    let text = this.#tails.get(type);
    if (text === undefined) {
      text = `, "type": ${quote(type)}}`;
      if (this.#tails.size < CACHE_LIMIT) this.#tails.set(type, text);
    }
    return text;
  }
}

/** The fields every event carries, before and after the type's own. */
const HEAD_FIELDS = new Set(["hostname", "utcoffset", "pid", "clock", "timestamp", "type"]);

/** How often the utcoffset is looked at again. */
const OFFSET_CHECK_MS = 60_000;

const CACHE_LIMIT = 256;

/** Hours west of UTC, as Celery's `utcoffset()` gives it. */
export function utcOffsetHours(): number {
  return Math.floor(new Date().getTimezoneOffset() / 60);
}

/** A field's value: the common ones (strings, numbers, null) directly, the rest by `encodeJson`. */
function writeField(out: string[], value: unknown): void {
  switch (typeof value) {
    case "string":
      if (isPlainJsonText(value)) out.push('"', value, '"');
      else out.push(quote(value));
      return;
    case "number":
      out.push(Number.isFinite(value) ? String(value) : encodeJson(value));
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    default:
      out.push(value === null ? "null" : encodeJson(value));
  }
}
