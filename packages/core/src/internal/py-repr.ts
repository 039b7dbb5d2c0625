const MAX_REPR_LENGTH = 1024;

/**
 * A Python-style `repr` of task arguments, for the `argsrepr`/`kwargsrepr` headers that monitoring
 * tools (Flower, `celery inspect`) display. Display only: never parsed back.
 */
export function reprArgs(args: readonly unknown[]): string {
  const inner = args.map(repr).join(", ");
  return truncate(args.length === 1 ? `(${inner},)` : `(${inner})`);
}

export function reprKwargs(kwargs: Record<string, unknown>): string {
  return truncate(repr(kwargs));
}

function truncate(text: string): string {
  return text.length > MAX_REPR_LENGTH ? `${text.slice(0, MAX_REPR_LENGTH - 3)}...` : text;
}

function repr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "string") return reprString(value);
  if (value instanceof Date) return reprString(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(repr).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value).map(([k, v]) => `${reprString(k)}: ${repr(v)}`);
    return `{${items.join(", ")}}`;
  }
  return reprString(String(value));
}

function reprString(text: string): string {
  const quoteChar = text.includes("'") && !text.includes('"') ? '"' : "'";
  // eslint-disable-next-line no-control-regex -- Python's repr escapes control characters
  const escaped = text.replace(/[\\\n\r\t\u0000-\u001f\u007f]/g, (ch) => {
    if (ch === "\\") return "\\\\";
    if (ch === "\n") return "\\n";
    if (ch === "\r") return "\\r";
    if (ch === "\t") return "\\t";
    return `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
  return quoteChar + (quoteChar === "'" ? escaped.replaceAll("'", "\\'") : escaped) + quoteChar;
}

/** A Python-style `repr` of one value (a task's result in events), cut at 1024 characters. */
export function reprValue(value: unknown): string {
  return truncate(repr(value));
}
