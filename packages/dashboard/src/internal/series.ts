/** Counts per fixed-width time bucket, keeping the last `buckets` buckets. */
export class TimeSeries {
  readonly #width: number;
  readonly #buckets: number;
  /** bucket start (epoch seconds) → series name → count */
  readonly #data = new Map<number, Record<string, number>>();

  constructor(widthSeconds: number, buckets: number) {
    this.#width = widthSeconds;
    this.#buckets = buckets;
  }

  add(at: number, name: string, n = 1): void {
    const start = Math.floor(at / this.#width) * this.#width;
    const bucket = this.#data.get(start) ?? {};
    bucket[name] = (bucket[name] ?? 0) + n;
    this.#data.set(start, bucket);
    if (this.#data.size > this.#buckets * 2) this.#trim(start);
  }

  #trim(newest: number): void {
    const oldest = newest - this.#width * this.#buckets;
    for (const key of this.#data.keys()) if (key < oldest) this.#data.delete(key);
  }

  /** The last `buckets` buckets up to `now`, oldest first, gaps as zeros. */
  points(now = Date.now() / 1000): { t: number; values: Record<string, number> }[] {
    const last = Math.floor(now / this.#width) * this.#width;
    const out = [];
    for (let i = this.#buckets - 1; i >= 0; i--) {
      const t = last - i * this.#width;
      out.push({ t, values: this.#data.get(t) ?? {} });
    }
    return out;
  }

  /** Events per second over the last `seconds` (complete buckets plus the current one). */
  rate(name: string, seconds = 60, now = Date.now() / 1000): number {
    let sum = 0;
    for (const [t, values] of this.#data)
      if (t > now - seconds - this.#width) sum += values[name] ?? 0;
    return sum / seconds;
  }
}

/** The last `keep` runtimes per task name, for percentiles. */
export class RuntimeStats {
  readonly #keep: number;
  readonly #samples = new Map<string, number[]>();

  constructor(keep: number) {
    this.#keep = keep;
  }

  add(name: string, seconds: number): void {
    const list = this.#samples.get(name) ?? [];
    list.push(seconds);
    if (list.length > this.#keep) list.shift();
    this.#samples.set(name, list);
  }

  /** p50, p90, p99 and max per task name, with the sample count. */
  percentiles(): {
    name: string;
    count: number;
    p50: number;
    p90: number;
    p99: number;
    max: number;
  }[] {
    return [...this.#samples]
      .map(([name, list]) => {
        const sorted = [...list].sort((a, b) => a - b);
        const at = (p: number): number =>
          sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
        return {
          name,
          count: sorted.length,
          p50: at(0.5),
          p90: at(0.9),
          p99: at(0.99),
          max: sorted.at(-1)!,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
