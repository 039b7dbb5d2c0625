import { configError } from "./errors.ts";

/** Bounds of a duration option, in seconds. */
export interface DurationBounds {
  /** Accept 0 (e.g. "no batching window"). @default false: only positive durations */
  zero?: boolean;
  /** The smallest value accepted, in seconds. @default 0 */
  min?: number;
  /** The largest value accepted, in seconds. @default Infinity */
  max?: number;
  /** Only whole seconds (an SQS attribute). @default false */
  integer?: boolean;
}

/**
 * A duration option in seconds, as Celery and kombu give durations: `visibilityTimeout: 30`.
 * Returns the value, or `fallback` when it is left out; anything else (negative, NaN, out of
 * bounds) is a `CONFIG` error that names the option and says what it accepts.
 *
 * @param pkg the driver's name, for the error
 * @param name the option's name as the user wrote it
 */
export function durationOption(
  pkg: string,
  name: string,
  value: number | undefined,
  fallback: number,
  bounds: DurationBounds = {},
): number {
  if (value === undefined) return fallback;
  const { zero = false, min = 0, max = Number.POSITIVE_INFINITY, integer = false } = bounds;
  const valid =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (value > 0 || (zero && value === 0)) &&
    value >= min &&
    value <= max &&
    (!integer || Number.isInteger(value));
  if (!valid) {
    const kind = integer ? "a whole number of seconds" : "a number of seconds";
    const range =
      max < Number.POSITIVE_INFINITY
        ? ` from ${zero ? 0 : Math.max(min, integer ? 1 : 0)} to ${max}`
        : zero
          ? ", 0 or more"
          : min > 0
            ? ` of at least ${min}`
            : " above 0";
    throw configError(pkg, `${name} must be ${kind}${range}, got ${String(value)}`);
  }
  return value;
}

/** Seconds to milliseconds, for timers. */
export function toMs(seconds: number): number {
  return seconds * 1000;
}
