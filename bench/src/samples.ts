// Figures from interleaved rounds: each scenario keeps one sample per round, and a cell shows the
// median, its spread, and its ratio to a base system measured in the same rounds.

/** One system's samples, by scenario. */
export type Samples = Record<string, number[]>;

export function add(samples: Samples, scenario: string, value: number): void {
  (samples[scenario] ??= []).push(value);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Half the range, as a share of the median: "±4%". Empty for a single sample. */
function spread(values: readonly number[]): string {
  if (values.length < 2) return "";
  const m = median(values);
  const half = (Math.max(...values) - Math.min(...values)) / 2;
  return m === 0 ? "" : ` ±${Math.round((half / m) * 100)}%`;
}

export interface Unit {
  /** How a median is written: "12,345 /s", "0.45 ms". */
  format(value: number): string;
  lowerIsBetter: boolean;
}

export const RATE: Unit = {
  format: (v) => `${Math.round(v).toLocaleString("en")} /s`,
  lowerIsBetter: false,
};
export const MS: Unit = { format: (v) => `${v.toFixed(2)} ms`, lowerIsBetter: true };
export const MICROS: Unit = { format: (v) => `${v.toFixed(0)} µs`, lowerIsBetter: true };
export const MB: Unit = { format: (v) => `${(v / 2 ** 20).toFixed(0)} MB`, lowerIsBetter: true };

/**
 * A cell: median, spread and ratio to `base` (above 1× is better, for costs too). With a sample
 * per round on both sides, the ratio is the median of the rounds' ratios (a noisy moment hits
 * both sides of a round alike); otherwise the ratio of the medians.
 */
export function cell(
  values: readonly number[] | undefined,
  base: readonly number[] | undefined,
  unit: Unit,
): string {
  if (!values?.length) return "n/a";
  const text = `${unit.format(median(values))}${spread(values)}`;
  if (!base?.length || values === base) return base === values ? `${text} (1.00×)` : text;
  const ratio = (v: number, b: number) => (unit.lowerIsBetter ? b / v : v / b);
  const r =
    values.length === base.length
      ? median(values.map((v, i) => ratio(v, base[i]!)))
      : ratio(median(values), median(base));
  return `${text} (${r.toFixed(2)}×)`;
}
