import { CeleryTsError } from "@celery-ts/core";

/** A wall-clock time in some time zone; `month` is 1-12, `weekday` 0 (Sunday) to 6. */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** Throws a CONFIG error naming the option unless `timeZone` is an IANA zone this runtime knows. */
export function checkTimeZone(timeZone: string, where: string): void {
  try {
    formatter(timeZone);
  } catch (cause) {
    throw new CeleryTsError(
      "CONFIG",
      `${where}: unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as ` +
        '"UTC", "Europe/Berlin" or "America/New_York"',
      { pkg: "worker", cause },
    );
  }
}

function partsOf(instant: number, timeZone: string): WallTime & { second: number } {
  const parts: Record<string, number> = {};
  for (const { type, value } of formatter(timeZone).formatToParts(instant)) {
    if (type !== "literal") parts[type] = Number(value);
  }
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

/** The wall-clock time of `instant` (epoch ms) in `timeZone`. */
export function wallTimeOf(instant: number, timeZone: string): WallTime {
  const { second: _second, ...wall } = partsOf(instant, timeZone);
  return wall;
}

/** The wall time as if it were UTC, in epoch ms: the arithmetic base of the conversions. */
export function wallAsUtc(wall: WallTime): number {
  return Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute);
}

/** How far ahead of UTC `timeZone`'s clocks are at `instant`, in ms (+3_600_000 for CET). */
export function offsetAt(instant: number, timeZone: string): number {
  const whole = Math.floor(instant / 1000) * 1000;
  const p = partsOf(whole, timeZone);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - whole;
}

const DAY_MS = 86_400_000;

/**
 * The instant a wall-clock time happens in `timeZone`, as cron does it: a time that happens twice
 * (the hour repeated when clocks go back) happens at its first occurrence only; a time that does
 * not happen (skipped when clocks go forward) happens as far after the change as it was after the
 * last valid time before it: 02:30 on a day that jumps from 02:00 to 03:00 is 03:30. So a daily
 * 02:30 task runs once on both days.
 */
export function instantOf(wall: WallTime, timeZone: string): number {
  const asUtc = wallAsUtc(wall);
  const before = offsetAt(asUtc - DAY_MS, timeZone);
  const after = offsetAt(asUtc + DAY_MS, timeZone);
  const valid = [asUtc - before, asUtc - after].filter(
    (candidate, i) => offsetAt(candidate, timeZone) === (i === 0 ? before : after),
  );
  if (valid.length === 0) return asUtc - before; // in the gap: the offset from before the change
  return Math.min(...valid);
}

/** The weekday of a calendar date: 0 (Sunday) to 6. */
export function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}
