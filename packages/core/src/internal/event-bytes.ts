/** The size a batch's buffer starts at, and keeps. */
const INITIAL_BYTES = 64 * 1024;
/** Strings at most this long are copied char by char; longer ones through `Buffer.write`. */
const SHORT = 64;

/**
 * A growable buffer of ASCII bytes that events are written into, reused from batch to batch: a
 * batch of task events written as bytes leaves no garbage behind but the body's string, where one
 * made of concatenated strings left ~1 kB per event (a cons string per piece, then the flat copy)
 * for the next scavenge. JSON as `encodeJson` writes it is ASCII (it escapes the rest), so a char
 * is a byte.
 */
export class EventBytes {
  #buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  /** Where the next byte goes. */
  at = 0;

  /** Room for `more` bytes after `at`. */
  room(more: number): void {
    if (this.at + more <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.#buffer.length * 2, this.at + more));
    this.#buffer.copy(grown, 0, 0, this.at);
    this.#buffer = grown;
  }

  /** Bytes made once (a head, a key). */
  bytes(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.#buffer.set(bytes, this.at);
    this.at += bytes.length;
  }

  /** Text known to be ASCII (JSON from `encodeJson`, a number). */
  ascii(text: string): void {
    const { length } = text;
    this.room(length);
    const buffer = this.#buffer;
    if (length > SHORT) {
      this.at += buffer.write(text, this.at, length, "latin1");
      return;
    }
    let at = this.at;
    for (let i = 0; i < length; i++) buffer[at++] = text.charCodeAt(i);
    this.at = at;
  }

  /**
   * A string as a JSON literal when it needs no escaping (printable ASCII, no quote or
   * backslash), written and checked in one pass; false, with nothing written, when it does.
   */
  plainString(text: string): boolean {
    const { length } = text;
    if (length > SHORT) return false;
    this.room(length + 2);
    const buffer = this.#buffer;
    let at = this.at;
    buffer[at++] = QUOTE;
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code < 0x20 || code > 0x7e || code === QUOTE || code === BACKSLASH) return false;
      buffer[at++] = code;
    }
    buffer[at++] = QUOTE;
    this.at = at;
    return true;
  }

  /** A non-negative safe integer's digits (a clock), without a string made for it. */
  uint(value: number): void {
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    this.room(digits);
    const buffer = this.#buffer;
    let rest = value;
    for (let at = this.at + digits - 1; at >= this.at; at--) {
      buffer[at] = 48 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
    this.at += digits;
  }

  /** One byte (`[`, `]`, `,`). */
  byte(code: number): void {
    this.room(1);
    this.#buffer[this.at++] = code;
  }

  /** The bytes from `from` to `at` as a string. */
  text(from = 0): string {
    return this.#buffer.toString("latin1", from, this.at);
  }

  /** Empties it; a buffer grown for a big batch is let go. */
  reset(): void {
    this.at = 0;
    if (this.#buffer.length > INITIAL_BYTES * 4)
      this.#buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
