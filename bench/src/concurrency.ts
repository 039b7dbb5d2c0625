// Which concurrency serves I/O-bound tasks best: one celery-ts worker process on Redis, tasks that
// wait 20 ms (a database query, an HTTP call), at several concurrency settings, interleaved.
import { nodeWorker } from "./child.ts";
import { fill, REDIS_URL } from "./redis.ts";
import type { Section } from "./report.ts";
import { add, cell, MICROS, RATE, type Samples } from "./samples.ts";
import { dropKeys, newPrefix, ROUNDS, withPrefix } from "./servers.ts";
import { perSecond } from "./stats.ts";

export const SETTINGS = [10, 50, 100, 200, 500];
const SLEEP_MS = 20;

async function run(concurrency: number, count: number, into: Samples): Promise<void> {
  const prefix = newPrefix();
  try {
    await fill("celery-ts", prefix, count, true);
    const url = withPrefix(REDIS_URL, prefix);
    const worker = nodeWorker({
      system: "celery-ts",
      broker: url,
      backend: url,
      prefix,
      queue: "bench",
      concurrency,
      every: count,
      sleepMs: SLEEP_MS,
    });
    const done = await worker.next();
    await worker.stop();
    add(into, `rate${concurrency}`, perSecond(count, done.ms));
    add(into, `cpu${concurrency}`, done.cpuUs / count);
  } finally {
    await dropKeys(prefix);
  }
}

export async function concurrencySection(total: number): Promise<Section> {
  const samples: Samples = {};
  for (let r = 0; r < ROUNDS; r++) {
    console.error(`bench: concurrency round ${r + 1} of ${ROUNDS}`);
    for (const c of SETTINGS) await run(c, total, samples);
  }
  const base = samples[`rate${SETTINGS[0]}`];
  return {
    title: `Concurrency for I/O-bound tasks: one celery-ts worker process on Redis, ${total} tasks that each wait ${SLEEP_MS} ms`,
    columns: SETTINGS.map((c) => `-c ${c}`),
    rows: [
      {
        scenario: "tasks per second",
        cells: SETTINGS.map((c) => cell(samples[`rate${c}`], base, RATE)),
      },
      {
        scenario: "worker CPU per task",
        cells: SETTINGS.map((c) => cell(samples[`cpu${c}`], samples[`cpu${SETTINGS[0]}`], MICROS)),
      },
    ],
    notes: `Medians of ${ROUNDS} interleaved rounds, ± half their range; ratios are to -c ${SETTINGS[0]}. The task awaits
a ${SLEEP_MS} ms timer, as a task waiting on a database or an HTTP call does: at concurrency c one
process can do at most c × ${1000 / SLEEP_MS} tasks per second, until the broker round trips and
its own CPU per task become the limit. Results stored, prefetch equal to the concurrency.`,
  };
}
