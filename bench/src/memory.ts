// Memory: a worker's RSS idle, and as tasks go through it (celery-ts and BullMQ, each in a process
// of its own at concurrency 50), fed in bulk batches so the queue never holds more than two.
import { nodeWorker, treeRss, type Checkpoint } from "./child.ts";
import { REDIS_URL, fill, type System } from "./redis.ts";
import type { Section } from "./report.ts";
import { dropKeys, newPrefix, withPrefix } from "./servers.ts";

const STEP = 10_000;
/** Results (and BullMQ's completed jobs) kept this long, so that Redis holds a bounded number. */
const KEEP_SECONDS = 10;
/** Where RSS is compared for flatness: from here to the end of the run. */
const FLAT_FROM = 100_000;

interface Growth {
  /** RSS (bytes) by tasks done; 0 is idle (started, 3 s later). */
  rss: Map<number, number>;
  /** V8 heap in use (bytes) by tasks done. */
  heap: Map<number, number>;
  seconds: number;
}

async function grow(system: System, total: number): Promise<Growth> {
  const prefix = newPrefix();
  const url = withPrefix(REDIS_URL, prefix);
  const rss = new Map<number, number>();
  const heap = new Map<number, number>();
  const worker = nodeWorker({
    system,
    broker: system === "bullmq" ? REDIS_URL : url,
    backend: `${url}&result_expires=${KEEP_SECONDS}`,
    prefix,
    queue: "bench",
    concurrency: 50,
    every: STEP,
    keepSeconds: KEEP_SECONDS,
  });
  const started = performance.now();
  try {
    await worker.ready;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    rss.set(0, treeRss(worker.pid));
    // One batch ahead: the next is queued while the worker does the last, so it never idles.
    await fill(system, prefix, STEP, true);
    let queued = STEP;
    for (let done = 0; done < total;) {
      if (queued < total) {
        await fill(system, prefix, STEP, true);
        queued += STEP;
      }
      const checkpoint: Checkpoint = await worker.next();
      done = checkpoint.tasks;
      rss.set(done, checkpoint.rss);
      if (checkpoint.heapUsed !== undefined) heap.set(done, checkpoint.heapUsed);
      if (done % 100_000 === 0) {
        console.error(`bench: memory ${system} ${done} tasks, RSS ${mb(checkpoint.rss)}`);
      }
    }
  } finally {
    await worker.stop();
    await dropKeys(prefix);
  }
  return { rss, heap, seconds: (performance.now() - started) / 1000 };
}

const mb = (bytes: number | undefined) =>
  bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** The change from the first value to the second, as a signed percentage. */
const change = (from: number | undefined, to: number | undefined) =>
  from && to ? `${to >= from ? "+" : ""}${(((to - from) / from) * 100).toFixed(0)}%` : "n/a";

/** The highest value between `from` and `to` tasks: RSS over the stretch, not at one instant. */
function peak(values: Map<number, number>, from: number, to: number): number | undefined {
  const within = [...values].filter(([n]) => n >= from && n <= to).map(([, v]) => v);
  return within.length ? Math.max(...within) : undefined;
}

export async function memorySection(total: number): Promise<Section> {
  const marks = [STEP, FLAT_FROM, total].filter((n, i, all) => n <= total && all.indexOf(n) === i);
  const ours = await grow("celery-ts", total);
  const bull = await grow("bullmq", total);
  const row = (scenario: string, a: number | undefined, b: number | undefined) => {
    const ratio = a && b ? ` (${(b / a).toFixed(2)}×)` : "";
    return { scenario, cells: [`${mb(a)}${ratio}`, `${mb(b)} (1.00×)`] };
  };
  const flat = total > FLAT_FROM;
  const growth = (g: Growth) => change(g.rss.get(FLAT_FROM), g.rss.get(total));
  const from = (FLAT_FROM / 1000).toLocaleString("en");
  return {
    title: `Memory: worker RSS, idle and after ${total.toLocaleString("en")} no-op tasks (concurrency 50)`,
    columns: ["celery-ts", "BullMQ"],
    rows: [
      row("idle (started, 3 s later)", ours.rss.get(0), bull.rss.get(0)),
      ...marks.map((n) =>
        row(`after ${n.toLocaleString("en")} tasks`, ours.rss.get(n), bull.rss.get(n)),
      ),
      ...(flat
        ? [
            row(
              `highest from ${from}k tasks to the end`,
              peak(ours.rss, FLAT_FROM, total),
              peak(bull.rss, FLAT_FROM, total),
            ),
            {
              scenario: `RSS change from ${from}k tasks to the end`,
              cells: [growth(ours), growth(bull)],
            },
            {
              scenario: `V8 heap in use at ${from}k tasks, at the end`,
              cells: [ours, bull].map(
                (g) => `${mb(g.heap.get(FLAT_FROM))}, ${mb(g.heap.get(total))}`,
              ),
            },
          ]
        : []),
      {
        scenario: "run time (enqueue and process)",
        cells: [ours, bull].map((g) => `${Math.round(g.seconds)} s`),
      },
    ],
    notes: `Each worker runs in a process of its own, reporting its RSS and V8 heap every
${STEP.toLocaleString("en")} tasks; it is fed ${STEP.toLocaleString("en")} tasks at a time by the bench's
producer (sendMany / addBulk, 1,000 a call), one batch ahead, so the queue holds at most two.
Results expire after ${KEEP_SECONDS} s (BullMQ: completed jobs removed after ${KEEP_SECONDS} s) so that
Redis holds a bounded number. Ratios are to BullMQ (above 1× is leaner). One run, not interleaved
rounds: RSS is not sensitive to load as speed is. The default size is 100,000 tasks (a few minutes
for both); whether RSS stays flat to a million is opt-in, as it takes ten minutes or more on a busy
machine: \`BENCH=memory BENCH_MEMORY_TASKS=1000000 pnpm bench\`.`,
  };
}
