import type { FleetState } from "../fleet-state.ts";
import type { QueueWatch } from "./queue-watch.ts";

/** What the page draws each second: workers, queues, counts, charts. */
export function overview(
  state: FleetState,
  queues: QueueWatch,
  now = Date.now() / 1000,
): Record<string, unknown> {
  const workers = [...state.workers.values()]
    .sort((a, b) => a.hostname.localeCompare(b.hostname))
    .map((w) => ({
      ...w,
      online: state.alive(w, now),
      heartbeatAge: Math.max(0, now - w.lastSeen),
    }));
  return {
    now,
    workers,
    queues: queues.list().map((q) => ({
      ...q,
      rateIn: state.queueIn.get(q.name)?.rate("n", 60, now) ?? 0,
      rateOut: state.queueOut.get(q.name)?.rate("n", 60, now) ?? 0,
    })),
    counts: state.counts(),
    tasksKept: state.tasks.size,
    throughput: state.throughput.points(now),
    runtimes: state.runtimes.percentiles(),
  };
}
