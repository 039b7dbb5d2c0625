import { encodeJson, quote } from "../json.ts";
import type { EventBytes } from "./event-bytes.ts";

/**
 * Writes monitoring events as JSON, byte for byte what `encodeJson` writes for
 * `{hostname, utcoffset, pid, clock, uuid, ...fields, timestamp, type}` (the event as Celery sends
 * it; `uuid` only for a task event), straight from its parts into an `EventBytes`: the constant
 * head is made once per worker, the timestamp once per millisecond, each key once, and neither
 * the event object, nor the generic encoder's bookkeeping, nor a string per piece is made per
 * event. A worker with task events on sends three events per task, so this is on the task path.
 */
export class EventJson {
  readonly #hostname: string;
  readonly #pid = process.pid;
  #utcoffset = Number.NaN;
  /** `{"hostname": ..., "utcoffset": ..., "pid": ..., "clock": `, for the current utcoffset. */
  #head = EMPTY;
  /** When the utcoffset is next looked at (it changes with daylight saving time). */
  #offsetCheck = 0;
  /** The millisecond of `#stamp`. */
  #now = Number.NaN;
  /** `, "timestamp": <seconds>` of `#now`. */
  #stamp = EMPTY;
  /** `, "key": ` of the field names seen (a few dozen at most in practice; bounded anyway). */
  readonly #keys = new Map<string, Uint8Array>();
  /** `, "type": "<type>"}` of the event types seen. */
  readonly #tails = new Map<string, Uint8Array>();

  constructor(hostname: string) {
    this.#hostname = hostname;
  }

  /**
   * Writes one event onto `out`; `uuid`, when given, is the first field (as `{uuid, ...fields}`
   * puts it). Throws as `encodeJson` does for a field JSON cannot hold (NaN, a function...),
   * having written part of it: the caller puts `out.at` back.
   */
  write(
    out: EventBytes,
    type: string,
    fields: Record<string, unknown>,
    clock: number,
    now: number,
    uuid?: string,
  ): void {
    if (now >= this.#offsetCheck) this.#refreshHead(now);
    const start = out.at;
    out.bytes(this.#head);
    if (Number.isSafeInteger(clock) && clock >= 0) out.uint(clock);
    else out.ascii(String(clock));
    if (uuid !== undefined) {
      out.bytes(UUID_KEY);
      writeString(out, uuid);
    }
    for (const key of Object.keys(fields)) {
      const value = fields[key];
      if (value === undefined) continue;
      if (HEAD_FIELDS.has(key) || (key === "uuid" && uuid !== undefined)) {
        // A field that only repeats the head (task-started's pid) is written there already;
        // one that changes it or moves it takes the generic way, which keeps the object's order.
        if (key === "pid" && value === this.#pid) continue;
        out.at = start;
        out.ascii(
          this.#generic(type, uuid === undefined ? fields : { uuid, ...fields }, clock, now),
        );
        return;
      }
      out.bytes(this.#key(key));
      writeField(out, value);
    }
    if (now !== this.#now) {
      this.#now = now;
      this.#stamp = ascii(`, "timestamp": ${String(now / 1000)}`);
    }
    out.bytes(this.#stamp);
    out.bytes(this.#tail(type));
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
    this.#head = ascii(
      `{"hostname": ${quote(this.#hostname)}, "utcoffset": ${String(offset)}, "pid": ${String(this.#pid)}, "clock": `,
    );
  }

  #key(key: string): Uint8Array {
    let bytes = this.#keys.get(key);
    if (bytes === undefined) {
      bytes = ascii(`, ${quote(key)}: `);
      if (this.#keys.size < CACHE_LIMIT) this.#keys.set(key, bytes);
    }
    return bytes;
  }

  #tail(type: string): Uint8Array {
    let bytes = this.#tails.get(type);
    if (bytes === undefined) {
      bytes = ascii(`, "type": ${quote(type)}}`);
      if (this.#tails.size < CACHE_LIMIT) this.#tails.set(type, bytes);
    }
    return bytes;
  }
}

const EMPTY: Uint8Array = new Uint8Array(0);

/** The bytes of ASCII text (what `quote` and `encodeJson` write). */
function ascii(text: string): Uint8Array {
  return Buffer.from(text, "latin1");
}

const UUID_KEY = ascii(`, "uuid": `);

/** The fields every event carries, before and after the type's own. */
const HEAD_FIELDS = new Set(["hostname", "utcoffset", "pid", "clock", "timestamp", "type"]);

/** How often the utcoffset is looked at again. */
const OFFSET_CHECK_MS = 60_000;

const CACHE_LIMIT = 256;

/** Hours west of UTC, as Celery's `utcoffset()` gives it. */
export function utcOffsetHours(): number {
  return Math.floor(new Date().getTimezoneOffset() / 60);
}

/** A string as `quote` writes it. */
function writeString(out: EventBytes, text: string): void {
  if (!out.plainString(text)) out.ascii(quote(text));
}

/** A field's value: the common ones (strings, numbers, null) directly, the rest by `encodeJson`. */
function writeField(out: EventBytes, value: unknown): void {
  switch (typeof value) {
    case "string":
      return writeString(out, value);
    case "number":
      return out.ascii(Number.isFinite(value) ? String(value) : encodeJson(value));
    case "boolean":
      return out.ascii(value ? "true" : "false");
    default:
      return out.ascii(value === null ? "null" : encodeJson(value));
  }
}
