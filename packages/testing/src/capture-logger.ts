import type { Logger } from "@celery-ts/core";

export interface CapturedLine {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A logger that keeps what it is told, for assertions. */
export function captureLogger(): Logger & {
  lines: CapturedLine[];
  text(level?: CapturedLine["level"]): string;
} {
  const lines: CapturedLine[] = [];
  const at =
    (level: CapturedLine["level"]) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    text: (level) =>
      lines
        .filter((line) => level === undefined || line.level === level)
        .map((line) => line.message)
        .join("\n"),
  };
}
