import { configError } from "./errors.ts";

/** A duration option in milliseconds: positive and finite, or the default when left out. */
export function durationOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw configError(`${name} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}
