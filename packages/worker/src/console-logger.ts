import type { Logger } from "@celery-ts/core";

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface ConsoleLoggerOptions {
  /** Lines below this level are dropped. @default "info" */
  level?: LogLevel;
  /** `"json"`: one JSON object a line, for log collectors; `"pretty"`: for people. @default "pretty" */
  format?: "pretty" | "json";
  /** Fields added to every line, e.g. `{ pid }`. */
  fields?: Record<string, unknown>;
  /** Where lines go. @default process.stderr */
  stream?: NodeJS.WritableStream;
}

/** A structured logger writing to a stream: what the CLI and examples use. */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const threshold = LEVELS[options.level ?? "info"];
  const stream = options.stream ?? process.stderr;
  const json = options.format === "json";
  const write = (level: LogLevel, message: string, fields: Record<string, unknown> = {}): void => {
    if (LEVELS[level] < threshold) return;
    const all = { ...options.fields, ...fields };
    const time = new Date().toISOString();
    if (json) {
      stream.write(`${JSON.stringify({ time, level, msg: message, ...all }, bigints)}\n`);
      return;
    }
    const pairs = Object.entries(all).map(
      ([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v, bigints)}`,
    );
    stream.write(
      `${time} ${level.toUpperCase().padEnd(5)} ${message}${pairs.length ? ` ${pairs.join(" ")}` : ""}\n`,
    );
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

/** JSON.stringify throws on a bigint (e.g. an exact integer from Python): log its digits. */
function bigints(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
