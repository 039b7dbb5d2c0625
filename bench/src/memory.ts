// Memory: a worker's RSS idle, and as tasks go through it (celery-ts and BullMQ, each in a process
// of its own at concurrency 50), fed in batches so the queue never holds more than one.
import { nodeWorker } from "./child.ts";
import { REDIS_URL, fill, type System } from "./redis.ts";
import type { Section } from "./report.ts";
import { dropKeys, newPrefix, withPrefix } from "./servers.ts";
import { treeRss } from "./child.ts";

const STEP = 10_000;
/** Results (and BullMQ's completed jobs) kept this long, so that Redis holds a bounded number. */
const KEEP_SECONDS = 10;

async function grow(system: System, total: number, marks: number[]): Promise<Map<number, number>> {
  const prefix = newPrefix();
  const url = withPrefix(REDIS_URL, prefix);
  const rss = new Map<number, number>();
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
  try {
    await worker.ready;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    rss.set(0, treeRss(worker.pid));
    for (let done = 0; done < total;) {
      await fill(system, prefix, STEP, true);
      const checkpoint = await worker.next();
      done = checkpoint.tasks;
      if (marks.includes(done)) rss.set(done, checkpoint.rss);
    }
  } finally {
    await worker.stop();
    await dropKeys(prefix);
  }
  return rss;
}

export async function memorySection(total: number): Promise<Section> {
  const marks = [STEP, 100_000, total].filter((n, i, all) => n <= total && all.indexOf(n) === i);
  const ours = await grow("celery-ts", total, marks);
  const bull = await grow("bullmq", total, marks);
  const mb = (bytes: number | undefined) =>
    bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(0)} MB`;
  const row = (scenario: string, at: number) => {
    const a = ours.get(at);
    const b = bull.get(at);
    const ratio = a && b ? ` (${(b / a).toFixed(2)}×)` : "";
    return { scenario, cells: [`${mb(a)}${ratio}`, `${mb(b)} (1.00×)`] };
  };
  return {
    title: `Memory: worker RSS, idle and after ${total.toLocaleString("en")} no-op tasks (concurrency 50)`,
    columns: ["celery-ts", "BullMQ"],
    rows: [
      row("idle (started, 3 s later)", 0),
      ...marks.map((n) => row(`after ${n.toLocaleString("en")} tasks`, n)),
    ],
    notes: `Each worker runs in a process of its own; it is fed ${STEP.toLocaleString("en")} tasks at a time
(the next batch once it has done the last). Results expire after ${KEEP_SECONDS} s (BullMQ: completed
jobs removed after ${KEEP_SECONDS} s) so that Redis holds a bounded number. Ratios are to BullMQ (above
1× is leaner). One run, not interleaved rounds: RSS is not sensitive to load as speed is.`,
  };
}
