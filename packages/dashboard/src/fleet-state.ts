import type { CeleryEvent } from "@celery-ts/core";
import { RuntimeStats, TimeSeries } from "./internal/series.ts";

/** A worker as its events (and `inspect stats`) describe it. */
export interface WorkerView {
  hostname: string;
  /** `celery-ts 0.1.0`, `py-celery 5.2.6`. */
  software: string;
  /** Epoch seconds of its last event. */
  lastSeen: number;
  /** Seconds between its heartbeats. */
  freq: number;
  offline: boolean;
  active: number;
  processed: number;
  loadavg: number[];
  /** From `inspect stats`, when it answered. */
  concurrency?: number;
  queues: string[];
}

/** A task as its events describe it. Arguments and results are Celery's reprs (strings). */
export interface TaskView {
  uuid: string;
  name: string;
  state: string;
  worker: string;
  /** Epoch seconds: first seen, last change, started. */
  received: number;
  updated: number;
  started?: number;
  runtime?: number;
  retries: number;
  args?: string | undefined;
  kwargs?: string | undefined;
  result?: string | undefined;
  exception?: string | undefined;
  traceback?: string | undefined;
  queue?: string | undefined;
  rootId?: string | undefined;
  parentId?: string | undefined;
  eta?: string | null;
  expires?: string | null;
  /** One line per event: `[time, type]`. */
  history: [number, string][];
}

export const STATE_OF_EVENT: Record<string, string> = {
  "task-sent": "PENDING",
  "task-received": "RECEIVED",
  "task-started": "STARTED",
  "task-succeeded": "SUCCESS",
  "task-failed": "FAILURE",
  "task-retried": "RETRY",
  "task-rejected": "REJECTED",
  "task-revoked": "REVOKED",
};

/** A task in a final state is not moved back by a late event (events can arrive out of order). */
const FINAL = new Set(["SUCCESS", "FAILURE", "REVOKED", "REJECTED"]);

export interface FleetStateOptions {
  /** Tasks kept in memory; the oldest are forgotten first. @default 10000 */
  maxTasks?: number;
}

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

/** What the dashboard knows of the fleet, built from Celery's events as Flower builds it. */
export class FleetState {
  readonly workers = new Map<string, WorkerView>();
  readonly tasks = new Map<string, TaskView>();
  readonly throughput = new TimeSeries(10, 60);
  readonly runtimes = new RuntimeStats(500);
  readonly #maxTasks: number;
  /** Tasks received per queue (rate out) and sent per queue (rate in), as time series. */
  readonly queueIn = new Map<string, TimeSeries>();
  readonly queueOut = new Map<string, TimeSeries>();

  constructor(options: FleetStateOptions = {}) {
    this.#maxTasks = options.maxTasks ?? 10_000;
  }

  add(event: CeleryEvent): void {
    if (event.type.startsWith("worker-")) this.#worker(event);
    else if (event.type.startsWith("task-")) this.#task(event);
  }

  #worker(event: CeleryEvent): void {
    const row = this.workers.get(event.hostname) ?? {
      hostname: event.hostname,
      software: "",
      lastSeen: 0,
      freq: 2,
      offline: false,
      active: 0,
      processed: 0,
      loadavg: [],
      queues: [],
    };
    row.lastSeen = Math.max(row.lastSeen, event.timestamp);
    row.offline = event.type === "worker-offline";
    if (typeof event.active === "number") row.active = event.active;
    if (typeof event.processed === "number") row.processed = event.processed;
    if (Array.isArray(event.loadavg)) row.loadavg = event.loadavg.map(Number);
    if (typeof event.freq === "number") row.freq = event.freq;
    if (event.sw_ident !== undefined) {
      row.software = `${String(event.sw_ident)} ${String(event.sw_ver ?? "")}`.trim();
    }
    this.workers.set(event.hostname, row);
  }

  #task(event: CeleryEvent): void {
    const uuid = str(event.uuid);
    const state = STATE_OF_EVENT[event.type];
    if (uuid === undefined || state === undefined) return;
    let row = this.tasks.get(uuid);
    if (row === undefined) {
      row = {
        uuid,
        name: "",
        state,
        worker: "",
        received: event.timestamp,
        updated: 0,
        retries: 0,
        history: [],
      };
      this.tasks.set(uuid, row);
      if (this.tasks.size > this.#maxTasks) this.tasks.delete(this.tasks.keys().next().value!);
    }
    row.history.push([event.timestamp, event.type]);
    if (!FINAL.has(row.state) || FINAL.has(state)) row.state = state;
    row.updated = Math.max(row.updated, event.timestamp);
    if (event.type !== "task-sent") row.worker = event.hostname;
    this.#fields(row, event);
    this.#count(row, event);
  }

  #fields(row: TaskView, event: CeleryEvent): void {
    row.name = str(event.name) ?? row.name;
    row.args = str(event.args) ?? row.args;
    row.kwargs = str(event.kwargs) ?? row.kwargs;
    row.rootId = str(event.root_id) ?? row.rootId;
    row.parentId = str(event.parent_id) ?? row.parentId;
    row.queue = str(event.queue) ?? str(event.routing_key) ?? row.queue;
    if (typeof event.retries === "number") row.retries = Math.max(row.retries, event.retries);
    if (event.eta !== undefined) row.eta = str(event.eta) ?? null;
    if (event.expires !== undefined) row.expires = str(event.expires) ?? null;
    if (event.type === "task-started") row.started = event.timestamp;
    if (event.type === "task-succeeded") {
      row.result = event.result === undefined ? row.result : String(event.result);
      if (typeof event.runtime === "number") row.runtime = event.runtime;
    }
    if (event.type === "task-failed" && row.started !== undefined)
      row.runtime ??= event.timestamp - row.started;
    if (event.type === "task-failed" || event.type === "task-retried") {
      row.exception = str(event.exception) ?? row.exception;
      row.traceback = str(event.traceback) ?? row.traceback;
    }
    if (event.type === "task-retried") row.retries += 1;
  }

  #count(row: TaskView, event: CeleryEvent): void {
    const at = event.timestamp;
    if (event.type === "task-succeeded") {
      this.throughput.add(at, "succeeded");
      if (row.runtime !== undefined && row.name) this.runtimes.add(row.name, row.runtime);
    } else if (event.type === "task-failed") {
      this.throughput.add(at, "failed");
    } else if (event.type === "task-retried") {
      this.throughput.add(at, "retried");
    } else if (event.type === "task-sent" && row.queue) {
      this.#queueSeries(this.queueIn, row.queue).add(at, "n");
    } else if (event.type === "task-received") {
      // Celery's task-received names no queue: a worker that consumes one queue took it from there.
      row.queue ??= this.#queueOf(event.hostname);
      this.#queueSeries(this.queueOut, row.queue ?? "?").add(at, "n");
    }
  }

  /** A worker that consumes one queue received from it; otherwise the queue is unknown. */
  #queueOf(hostname: string): string | undefined {
    const queues = this.workers.get(hostname)?.queues ?? [];
    return queues.length === 1 ? queues[0] : undefined;
  }

  #queueSeries(map: Map<string, TimeSeries>, queue: string): TimeSeries {
    let series = map.get(queue);
    if (!series) map.set(queue, (series = new TimeSeries(10, 60)));
    return series;
  }

  /** A worker is lost when it missed its heartbeats (Celery's rule: freq × 2 plus a margin). */
  alive(worker: WorkerView, now = Date.now() / 1000): boolean {
    return !worker.offline && now - worker.lastSeen < worker.freq * 2 + 2;
  }

  /** Tasks whose parent is `uuid`. */
  children(uuid: string): TaskView[] {
    return [...this.tasks.values()].filter((t) => t.parentId === uuid && t.uuid !== uuid);
  }

  /** Newest first, filtered by a search text (name, id, worker, args) and a state. */
  search(filter: { q?: string; state?: string; limit?: number }): TaskView[] {
    const q = filter.q?.trim().toLowerCase();
    const out: TaskView[] = [];
    const all = [...this.tasks.values()].sort((a, b) => b.updated - a.updated);
    for (const task of all) {
      if (filter.state && task.state !== filter.state) continue;
      if (
        q &&
        !`${task.uuid} ${task.name} ${task.worker} ${task.args ?? ""} ${task.kwargs ?? ""}`
          .toLowerCase()
          .includes(q)
      ) {
        continue;
      }
      out.push(task);
      if (out.length >= (filter.limit ?? 200)) break;
    }
    return out;
  }

  /** Counts of tasks by state. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const task of this.tasks.values()) counts[task.state] = (counts[task.state] ?? 0) + 1;
    return counts;
  }
}
