import type { CeleryEvent } from "@celery-ts/core";

interface WorkerRow {
  hostname: string;
  lastHeartbeat: number;
  offline: boolean;
  active: number;
  processed: number;
  loadavg: unknown;
  software: string;
  freq: number;
}

interface TaskRow {
  uuid: string;
  name: string;
  state: string;
  hostname: string;
  timestamp: number;
}

const STATE_OF: Record<string, string> = {
  "task-sent": "PENDING",
  "task-received": "RECEIVED",
  "task-started": "STARTED",
  "task-succeeded": "SUCCESS",
  "task-failed": "FAILURE",
  "task-retried": "RETRY",
  "task-rejected": "REJECTED",
  "task-revoked": "REVOKED",
};

/** The state `celery events` (and Flower) build from events, drawn as a terminal page. */
export class FleetView {
  readonly workers = new Map<string, WorkerRow>();
  readonly tasks = new Map<string, TaskRow>();
  /** Finish times of tasks (success or failure), for the rate. */
  readonly #finished: number[] = [];
  readonly #out: NodeJS.WriteStream;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
  }

  add(event: CeleryEvent): void {
    if (event.type.startsWith("worker-")) {
      const row = this.workers.get(event.hostname) ?? {
        hostname: event.hostname,
        lastHeartbeat: 0,
        offline: false,
        active: 0,
        processed: 0,
        loadavg: [],
        software: "",
        freq: 2,
      };
      row.lastHeartbeat = event.timestamp;
      row.offline = event.type === "worker-offline";
      if (typeof event.active === "number") row.active = event.active;
      if (typeof event.processed === "number") row.processed = event.processed;
      if (event.loadavg !== undefined) row.loadavg = event.loadavg;
      if (typeof event.freq === "number") row.freq = event.freq;
      row.software = `${String(event.sw_ident ?? "")} ${String(event.sw_ver ?? "")}`.trim();
      this.workers.set(event.hostname, row);
      return;
    }
    const state = STATE_OF[event.type];
    const uuid = event.uuid;
    if (!state || typeof uuid !== "string") return;
    const row = this.tasks.get(uuid) ?? {
      uuid,
      name: "",
      state,
      hostname: event.hostname,
      timestamp: 0,
    };
    if (typeof event.name === "string") row.name = event.name;
    row.state = state;
    row.hostname = event.hostname;
    row.timestamp = event.timestamp;
    this.tasks.set(uuid, row);
    if (state === "SUCCESS" || state === "FAILURE") this.#finished.push(event.timestamp);
    if (this.tasks.size > 10_000) this.tasks.delete(this.tasks.keys().next().value!);
  }

  /** Tasks finished per second over the last 10 seconds. */
  rate(now = Date.now() / 1000): number {
    while (this.#finished.length > 0 && this.#finished[0]! < now - 10) this.#finished.shift();
    return this.#finished.length / 10;
  }

  lines(now = Date.now() / 1000): string[] {
    const out = [`celery-ts events — ${new Date(now * 1000).toISOString()}`, ""];
    out.push(
      "WORKER                                   STATUS   ACTIVE  PROCESSED  LOAD            SOFTWARE",
    );
    for (const w of [...this.workers.values()].sort((a, b) =>
      a.hostname.localeCompare(b.hostname),
    )) {
      const alive = !w.offline && now - w.lastHeartbeat < w.freq * 2 + 2;
      out.push(
        [
          w.hostname.padEnd(40),
          (alive ? "ONLINE" : "OFFLINE").padEnd(8),
          String(w.active).padStart(6),
          String(w.processed).padStart(10),
          ` ${JSON.stringify(w.loadavg)}`.padEnd(16),
          w.software,
        ].join(" "),
      );
    }
    const counts = new Map<string, number>();
    for (const t of this.tasks.values()) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
    out.push(
      "",
      `TASKS  ${[...counts].map(([s, n]) => `${s}: ${n}`).join("  ") || "none seen yet"}`,
    );
    out.push(`RATE   ${this.rate(now).toFixed(1)} tasks/s (last 10 s)`, "", "RECENT");
    const recent = [...this.tasks.values()].sort((a, b) => b.timestamp - a.timestamp).slice(0, 15);
    for (const t of recent) {
      out.push(`  ${t.state.padEnd(9)} ${t.name.padEnd(30)} ${t.uuid}  ${t.hostname}`);
    }
    return out;
  }

  render(): void {
    const text = this.lines().join("\n");
    this.#out.write(this.#out.isTTY ? `\x1b[2J\x1b[H${text}\n` : `${text}\n\n`);
  }
}
