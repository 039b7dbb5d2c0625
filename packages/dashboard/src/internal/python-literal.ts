/**
 * Reads back the Python reprs Celery puts in events (`argsrepr`, `kwargsrepr`): literals only,
 * as `ast.literal_eval` does — None, True, False, numbers, strings, lists, tuples, dicts.
 * Anything else (an object's repr, a repr Celery cut short with `...`) throws: such a task cannot
 * be re-sent from its events.
 */
export function parsePythonLiteral(text: string): unknown {
  const parser = new Parser(text);
  const value = parser.value();
  parser.end();
  return value;
}

class Parser {
  #i = 0;
  readonly #s: string;

  constructor(s: string) {
    this.#s = s;
  }

  #ws(): void {
    while (/\s/.test(this.#s[this.#i] ?? "")) this.#i++;
  }

  #fail(what: string): never {
    throw new Error(
      `not a Python literal: ${what} at character ${this.#i} of ${JSON.stringify(this.#s.slice(0, 80))}`,
    );
  }

  end(): void {
    this.#ws();
    if (this.#i !== this.#s.length) this.#fail("unexpected text");
  }

  value(): unknown {
    this.#ws();
    const c = this.#s[this.#i];
    if (c === "[") return this.#sequence("]");
    if (c === "(") {
      const items = this.#sequence(")");
      return items;
    }
    if (c === "{") return this.#dict();
    if (c === "'" || c === '"') return this.#string();
    const word = /^(None|True|False|-?\d+(\.\d+)?(e[-+]?\d+)?)/i.exec(this.#s.slice(this.#i));
    if (!word) this.#fail("unexpected value");
    this.#i += word[0].length;
    if (word[0] === "None") return null;
    if (word[0] === "True") return true;
    if (word[0] === "False") return false;
    return Number(word[0]);
  }

  #sequence(close: string): unknown[] {
    this.#i++;
    const items: unknown[] = [];
    for (;;) {
      this.#ws();
      if (this.#s[this.#i] === close) {
        this.#i++;
        return items;
      }
      items.push(this.value());
      this.#ws();
      if (this.#s[this.#i] === ",") this.#i++;
      else if (this.#s[this.#i] !== close) this.#fail(`expected , or ${close}`);
    }
  }

  #dict(): Record<string, unknown> {
    this.#i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.#ws();
      if (this.#s[this.#i] === "}") {
        this.#i++;
        return out;
      }
      const key = this.value();
      if (typeof key !== "string" && typeof key !== "number")
        this.#fail("a dict key that is not a string");
      this.#ws();
      if (this.#s[this.#i] !== ":") this.#fail("expected :");
      this.#i++;
      out[String(key)] = this.value();
      this.#ws();
      if (this.#s[this.#i] === ",") this.#i++;
      else if (this.#s[this.#i] !== "}") this.#fail("expected , or }");
    }
  }

  #string(): string {
    const quote = this.#s[this.#i++];
    let out = "";
    for (;;) {
      const c = this.#s[this.#i++];
      if (c === undefined) this.#fail("unterminated string");
      if (c === quote) return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.#s[this.#i++];
      const simple: Record<string, string> = {
        n: "\n",
        t: "\t",
        r: "\r",
        "\\": "\\",
        "'": "'",
        '"': '"',
        "0": "\0",
      };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === "x" || e === "u" || e === "U") {
        const len = e === "x" ? 2 : e === "u" ? 4 : 8;
        const hex = this.#s.slice(this.#i, this.#i + len);
        if (!/^[0-9a-f]+$/i.test(hex) || hex.length !== len) this.#fail("bad escape");
        out += String.fromCodePoint(parseInt(hex, 16));
        this.#i += len;
      } else this.#fail("unknown escape");
    }
  }
}
