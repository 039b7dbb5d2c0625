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
