import type { Logger } from "@celery-ts/core";
import { createConsoleLogger, type LogLevel } from "../console-logger.ts";

/** Celery's level names, in any case, to ours: `DEBUG`, `Info`, `WARNING`, `critical`. */
const LOG_LEVELS: Record<string, LogLevel> = {
  debug: "debug",
  info: "info",
  warn: "warn",
  warning: "warn",
  error: "error",
  critical: "error",
  fatal: "error",
};

function parseLogLevel(value: string): LogLevel {
  const level = LOG_LEVELS[value.toLowerCase()];
  if (level === undefined) {
    throw new Error(`--log-level is debug, info, warning or error (any case), not "${value}"`);
  }
  return level;
}

/** The console logger `--log-level` and `--log-format` ask for, each line with the process id. */
export function loggerFromFlags(values: {
  "log-level"?: string | undefined;
  "log-format"?: string | undefined;
}): Logger {
  const level = parseLogLevel(values["log-level"] ?? "info");
  const format = values["log-format"] ?? "pretty";
  if (format !== "json" && format !== "pretty") {
    throw new Error(`--log-format is pretty or json, not "${format}"`);
  }
  return createConsoleLogger({ level, format, fields: { pid: process.pid } });
}

/** The logging options of the one-shot commands (inspect, purge, result, call, ...). */
export const COMMAND_LOG_OPTIONS = {
  "log-level": { type: "string", short: "l" },
  "log-format": { type: "string" },
} as const;

export const COMMAND_LOG_USAGE = `  -l, --log-level <level>     debug, info, warning, error (any case) [default warning]
      --log-format <format>   pretty or json [default pretty]`;

/**
 * The logger a one-shot command gives the broker and backend it opens (to stderr, so their
 * output on stdout stays clean): their warnings show, as under `celery-ts worker`.
 */
export function commandLogger(values: Record<string, unknown>): Logger {
  const level = values["log-level"];
  const format = values["log-format"];
  return loggerFromFlags({
    "log-level": typeof level === "string" ? level : "warning",
    "log-format": typeof format === "string" ? format : undefined,
  });
}
