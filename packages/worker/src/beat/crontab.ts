import { CeleryTsError } from "@celery-ts/core";
import {
  instantOf,
  offsetAt,
  wallAsUtc,
  wallTimeOf,
  weekdayOf,
  type WallTime,
} from "./zoned-time.ts";

/**
 * Celery's `crontab()` fields, by Celery's names. Each is a number, or a string of cron syntax:
 * `*`, `*\/15`, `1-5`, `1-10/2`, `1,15,30`, and day or month names (`mon-fri`, `jan`).
 * Days of the week run 0 (Sunday) to 6 (7 is Sunday too). Unset fields are `*`.
 */
export interface CrontabFields {
  minute?: string | number;
  hour?: string | number;
  day_of_week?: string | number;
  day_of_month?: string | number;
  month_of_year?: string | number;
}

/** A parsed crontab: the allowed values of each field, sorted. */
export interface Crontab {
  minutes: number[];
  hours: number[];
  daysOfWeek: Set<number>;
  daysOfMonth: Set<number>;
  months: Set<number>;
}

const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTH_NAMES = [
  "jan",
  "feb",
  "mar",
  "apr",
  "may",
  "jun",
  "jul",
  "aug",
  "sep",
  "oct",
  "nov",
  "dec",
];

interface FieldRule {
  name: keyof CrontabFields;
  min: number;
  max: number;
  names?: string[];
  /** Where names[0] counts from. */
  namesFrom?: number;
}

const RULES: FieldRule[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day_of_month", min: 1, max: 31 },
  { name: "month_of_year", min: 1, max: 12, names: MONTH_NAMES, namesFrom: 1 },
  // 7 is accepted as Sunday, as cron does, and folded to 0.
  { name: "day_of_week", min: 0, max: 7, names: DAY_NAMES, namesFrom: 0 },
];

function invalid(rule: FieldRule, text: string, why: string): CeleryTsError {
  return new CeleryTsError(
    "CONFIG",
    `crontab ${rule.name} ${JSON.stringify(text)}: ${why} (values ${rule.min}-${rule.max}` +
      `${rule.names ? ` or names such as ${rule.names.slice(0, 2).join(", ")}` : ""}; forms: *, */n, a-b, a-b/n, a,b)`,
    { pkg: "worker" },
  );
}

function valueOf(rule: FieldRule, token: string, text: string): number {
  const lower = token.toLowerCase();
  const named = rule.names?.findIndex((name) => lower.startsWith(name) && lower.length >= 3);
  if (named !== undefined && named >= 0) return named + (rule.namesFrom ?? 0);
  if (!/^\d+$/.test(token)) throw invalid(rule, text, `"${token}" is not a number`);
  const n = Number(token);
  if (n < rule.min || n > rule.max) throw invalid(rule, text, `${n} is out of range`);
  return n;
}

function parseField(rule: FieldRule, spec: string | number | undefined): number[] {
  const text = String(spec ?? "*").trim();
  const values = new Set<number>();
  for (const part of text.split(",")) {
    const [range = "", stepText] = part.trim().split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw invalid(rule, text, `bad step "${stepText}"`);
    let from = rule.min;
    let to = rule.name === "day_of_week" ? 6 : rule.max;
    if (range !== "*") {
      const [a, b] = range.split("-");
      if (a === undefined || a === "") throw invalid(rule, text, `empty value`);
      from = valueOf(rule, a, text);
      to = b === undefined ? (stepText === undefined ? from : rule.max) : valueOf(rule, b, text);
    }
    // A range that runs backwards wraps around, as Celery's does: fri-mon.
    const span = to >= from ? to - from : to + (rule.max - rule.min + 1) - from;
    for (let i = 0; i <= span; i += step) {
      const v = from + i;
      values.add(v > rule.max ? v - (rule.max - rule.min + 1) : v);
    }
  }
  if (rule.name === "day_of_week" && values.delete(7)) values.add(0);
  return [...values].sort((x, y) => x - y);
}

/** Parses a five-field string (`minute hour day-of-month month day-of-week`) or Celery's fields. */
export function parseCrontab(spec: string | CrontabFields): Crontab {
  let fields: CrontabFields;
  if (typeof spec === "string") {
    const parts = spec.trim().split(/\s+/);
    if (parts.length !== 5) {
      throw new CeleryTsError(
        "CONFIG",
        `crontab ${JSON.stringify(spec)} has ${parts.length} fields; a crontab string has five: ` +
          'minute hour day-of-month month day-of-week, e.g. "30 2 * * *" (02:30 every day)',
        { pkg: "worker" },
      );
    }
    const [minute, hour, day_of_month, month_of_year, day_of_week] = parts as [
      string,
      string,
      string,
      string,
      string,
    ];
    fields = { minute, hour, day_of_month, month_of_year, day_of_week };
  } else {
    const unknown = Object.keys(spec).filter((key) => !RULES.some((rule) => rule.name === key));
    if (unknown.length > 0) {
      throw new CeleryTsError(
        "CONFIG",
        `unknown crontab field ${unknown.map((key) => JSON.stringify(key)).join(", ")}; the ` +
          "fields are Celery's: minute, hour, day_of_week, day_of_month, month_of_year",
        { pkg: "worker" },
      );
    }
    fields = spec;
  }
  const [minutes, hours, daysOfMonth, months, daysOfWeek] = RULES.map((rule) =>
    parseField(rule, fields[rule.name]),
  ) as [number[], number[], number[], number[], number[]];
  return {
    minutes,
    hours,
    daysOfMonth: new Set(daysOfMonth),
    months: new Set(months),
    daysOfWeek: new Set(daysOfWeek),
  };
}

/** How far to look for a match: Feb 29 on a given weekday comes round within 28 years. */
const MAX_DAYS = 366 * 29;
const DAY_MS = 86_400_000;
const SLACK_MS = 14 * 3_600_000;

/**
 * The first instant after `after` (epoch ms) that matches `cron` in `timeZone`, or undefined when
 * none ever does (the 31st of February). Day of month and day of week must both match, as in
 * Celery (classic cron matches either when both are restricted).
 */
export function nextCrontab(cron: Crontab, after: number, timeZone: string): number | undefined {
  const start = wallTimeOf(after, timeZone);
  let dayUtc = Date.UTC(start.year, start.month - 1, start.day);
  for (let i = 0; i < MAX_DAYS; i++, dayUtc += DAY_MS) {
    const date = new Date(dayUtc);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth() + 1;
    const day = date.getUTCDate();
    if (!cron.months.has(month) || !cron.daysOfMonth.has(day)) continue;
    if (!cron.daysOfWeek.has(weekdayOf(year, month, day))) continue;
    // Most days have one offset from end to end: then wall time minus offset is the instant.
    const early = offsetAt(dayUtc - SLACK_MS, timeZone);
    const steady = early === offsetAt(dayUtc + DAY_MS + SLACK_MS, timeZone);
    let best: number | undefined;
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        const wall: WallTime = { year, month, day, hour, minute };
        const instant = steady ? wallAsUtc(wall) - early : instantOf(wall, timeZone);
        // On a day the clocks change, wall order and instant order can differ: take the least.
        if (instant > after && (best === undefined || instant < best)) best = instant;
        if (steady && best !== undefined) return best;
      }
    }
    if (best !== undefined) return best;
  }
  return undefined;
}
