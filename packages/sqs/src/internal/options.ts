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
