// What every side-by-side section measures per system, and how a figure is written in a cell.
import { percentile } from "./stats.ts";

export interface Figures {
  enqueueOne?: number;
  enqueueBulk?: number;
  /** celery-ts's `client.sendMany()` (one publishBatch per 1,000), beside BullMQ's addBulk. */
  enqueueSendMany?: number;
  process50?: number;
  process1?: number;
  latency?: number[];
}

/** Send-then-await rounds per system (celery-node gets a fifth: its get() polls). */
export const LATENCY_ROUNDS = 500;

/** The numbers 0 to total - 1, in chunks of `size`. */
export const chunks = (total: number, size: number): number[][] =>
  Array.from({ length: Math.ceil(total / size) }, (_, c) =>
    Array.from({ length: Math.min(size, total - c * size) }, (_, i) => c * size + i),
  );

/** The `q`th percentile of a system's round trips, if it measured any. */
export const latencyPercentile = (f: Figures, q: number): number | undefined =>
  f.latency ? percentile(f.latency, q) : undefined;

/**
 * A figure with its unit, and its ratio to `base` (above 1× is better, for latency too). A
 * `baseLabel` names the base in the cell, for a ratio that is not to the section's usual base.
 */
export function cell(
  value: number | undefined,
  base: number | undefined,
  unit: string,
  lowerIsBetter = false,
  baseLabel = "",
): string {
  if (value === undefined) return "n/a";
  const text = unit === "ms" ? `${value.toFixed(2)} ms` : `${value.toLocaleString("en")} ${unit}`;
  if (base === undefined || base === 0) return text;
  const ratio = lowerIsBetter ? base / value : value / base;
  return `${text} (${ratio.toFixed(2)}×${baseLabel ? ` ${baseLabel}` : ""})`;
}
