import { encodeJson, quote } from "../json.ts";

/**
 * Writes monitoring events as JSON text, byte for byte what `encodeJson` writes for
 * `{hostname, utcoffset, pid, clock, uuid, ...fields, timestamp, type}` (the event as Celery sends
 * it; `uuid` only for a task event), straight from its parts: the constant head is written once
 * per worker, the timestamp once per millisecond, and neither the event object nor the generic
 * encoder's bookkeeping is made per event. An event is one string, built by concatenation (V8
 * joins the pieces without copying them until the batch is encoded once for the wire): arrays of
 * pieces joined per batch cost twice as much. A worker with task events on sends three events per
 * task, so this is on the task path.
 */
export class EventJson {
  readonly #hostname: string;
  readonly #pid = process.pid;
  #utcoffset = Number.NaN;
  /** `{"hostname": ..., "utcoffset": ..., "pid": ..., "clock": `, for the current utcoffset. */
  #head = "";
  /** When the utcoffset is next looked at (it changes with daylight saving time). */
  #offsetCheck = 0;
  /** The millisecond of `#stamp`. */
  #now = Number.NaN;
  /** `, "timestamp": <seconds>` of `#now`. */
  #stamp = "";
  /** `, "key": ` of the field names seen (a few dozen at most in practice; bounded anyway). */
  readonly #keys = new Map<string, string>();
  /** `, "type": "<type>"}` of the event types seen. */
  readonly #tails = new Map<string, string>();

  constructor(hostname: string) {
    this.#hostname = hostname;
  }

  /**
   * One event's text; `uuid`, when given, is the first field (as `{uuid, ...fields}` puts it).
   * Throws as `encodeJson` does for a field JSON cannot hold (NaN, a function...).
   */
  text(
    type: string,
    fields: Record<string, unknown>,
    clock: number,
    now: number,
    uuid?: string,
  ): string {
    if (now >= this.#offsetCheck) this.#refreshHead(now);
    let text = this.#head + String(clock);
    if (uuid !== undefined) text += UUID_KEY + quote(uuid);
    for (const key of Object.keys(fields)) {
      const value = fields[key];
      if (value === undefined) continue;
      if (HEAD_FIELDS.has(key) || (key === "uuid" && uuid !== undefined)) {
        // A field that only repeats the head (task-started's pid) is written there already;
        // one that changes it or moves it takes the generic way, which keeps the object's order.
        if (key === "pid" && value === this.#pid) continue;
        return this.#generic(type, uuid === undefined ? fields : { uuid, ...fields }, clock, now);
      }
      text += this.#key(key) + fieldText(value);
    }
    if (now !== this.#now) {
      this.#now = now;
      this.#stamp = `, "timestamp": ${String(now / 1000)}`;
    }
    return text + this.#stamp + this.#tail(type);
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

const UUID_KEY = `, "uuid": `;

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
function fieldText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return quote(value);
    case "number":
      return Number.isFinite(value) ? String(value) : encodeJson(value);
    case "boolean":
      return value ? "true" : "false";
    default:
      return value === null ? "null" : encodeJson(value);
  }
}
