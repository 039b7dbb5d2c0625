import { configError } from "./errors.ts";

/** A whole number within bounds, or the default when left out. */
export function integerOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw configError(`${name} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A duration in milliseconds, zero or more, or the default when left out. */
export function millisecondsOption(name: string, value: number | undefined, fallback: number) {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw configError(`${name} must be zero or more milliseconds, got ${String(value)}`);
  }
  return value;
}
