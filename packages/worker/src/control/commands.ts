import { forwardClock, type TaskDefinition } from "@celery-ts/core";
import type { RequestTracker } from "./requests.ts";
import type { RevokedSet } from "./revoked.ts";
import { parseRate } from "../flow/rate.ts";

/** What remote control may read and steer in a worker. */
export interface ControlTarget {
  readonly hostname: string;
  readonly registry: ReadonlyMap<string, TaskDefinition>;
  readonly requests: RequestTracker;
  readonly revoked: RevokedSet;
  /** Per task name, as set by `rate_limit`. */
  readonly rateLimits: ReadonlyMap<string, string | null>;
  setRateLimit(task: string, rate: string | null): void;
  /** Per task name, set by `time_limit`; overrides the task's own limits. */
  readonly timeLimits: Map<string, { soft?: number; hard?: number }>;
  concurrency(): number;
  setConcurrency(n: number): void;
  prefetch(): number;
  queues(): readonly string[];
  setQueues(queues: readonly string[]): void;
  taskEvents(): boolean;
  setTaskEvents(on: boolean): void;
  sendHeartbeat(): void;
  shutdown(reason: string): void;
  /** Aborts the running task `id` (its signal fires; it is stored REVOKED): false if not running. */
  terminate(id: string, signal: string): boolean;
  stats(): Record<string, unknown>;
  /** Celery's settings this worker has, by Celery's names (`inspect conf`). */
  conf(): Record<string, unknown>;
}

type Handler = (target: ControlTarget, args: Record<string, unknown>) => unknown;

const ok = (value: unknown) => ({ ok: value });
const nok = (value: unknown) => ({ error: value });

function idList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/**
 * Revoked ids as mingle's `hello` carries them: Celery's `LimitedSet` data `{id: [time, id]}` or
 * `{id: time}` (seconds: since the epoch from celery-ts, since boot from Python), or a list.
 */
export function mergeRevoked(revoked: RevokedSet, value: unknown): void {
  if (Array.isArray(value)) {
    revoked.merge(value.map((id) => [String(id), Date.now()] as const));
  } else if (typeof value === "object" && value !== null) {
    revoked.merge(
      Object.entries(value).map(([id, at]) => {
        const seconds = Array.isArray(at) ? Number(at[0]) : Number(at);
        return [id, seconds * 1000] as const;
      }),
    );
  }
}

function optionalNumber(value: unknown): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** A `rate_limit` argument as a rate string: empty, null and 0 are none (null), as in Celery. */
function rateArg(value: unknown): string | null {
  if (value === null || value === undefined || value === "" || value === 0) return null;
  return String(value);
}

const revoke: Handler = (target, args) => {
  const ids = idList(args.task_id);
  target.revoked.add(ids);
  if (args.terminate === true || args.terminate === "true") {
    const signal = typeof args.signal === "string" && args.signal ? args.signal : "SIGTERM";
    const terminated = ids.filter((id) => target.terminate(id, signal));
    if (terminated.length === 0) return ok("terminate: tasks unknown");
    return ok(`terminate: ${terminated.join(", ")}`);
  }
  return ok(`tasks ${ids.join(", ")} flagged as revoked`);
};

/** Celery's `Panel`: every command a Python client may send, by name (aliases included). */
const HANDLERS: Record<string, Handler> = {
  ping: () => ok("pong"),
  // The Lamport clock, forwarded as Celery's `clock` command does.
  clock: () => ({ clock: forwardClock() }),
  active: (t) => t.requests.list("active").map((r) => t.requests.info(r)),
  reserved: (t) => t.requests.list("reserved").map((r) => t.requests.info(r)),
  scheduled: (t) =>
    t.requests.list("scheduled").map((r) => ({
      eta: r.eta,
      priority: r.priority,
      request: t.requests.info(r),
    })),
  revoked: (t) => t.revoked.ids(),
  registered: (t, args) => {
    const items = idList(args.taskinfoitems);
    return [...t.registry.keys()].sort().map((name) => {
      const rate = t.rateLimits.get(name);
      const fields: string[] = [];
      if ((items.length === 0 || items.includes("rate_limit")) && rate) {
        fields.push(`rate_limit=${rate}`);
      }
      return fields.length > 0 ? `${name} [${fields.join(" ")}]` : name;
    });
  },
  stats: (t) => t.stats(),
  active_queues: (t) => t.queues().map(queueInfo),
  query_task: (t, args) => {
    const found: Record<string, unknown> = {};
    for (const id of idList(args.ids)) {
      const request = t.requests.get(id);
      if (!request) continue;
      const state = request.state === "scheduled" ? "reserved" : request.state;
      found[id] = [state, t.requests.info(request)];
    }
    return found;
  },
  conf: (t) => t.conf(),
  report: (t) => ok(`software -> celery-ts (node ${process.version})\nnode -> ${t.hostname}`),
  revoke,
  terminate: (t, args) => revoke(t, { ...args, terminate: true }),
  rate_limit: (t, args) => {
    const name = String(args.task_name ?? "");
    const rate = rateArg(args.rate_limit);
    try {
      parseRate(rate, name);
    } catch (error) {
      return nok(`Invalid rate limit string: ${(error as Error).message}`);
    }
    if (!t.registry.has(name)) return nok("unknown task");
    t.setRateLimit(name, rate);
    return ok(rate ? "new rate limit set successfully" : "rate limit disabled successfully");
  },
  time_limit: (t, args) => {
    const name = String(args.task_name ?? "");
    if (!t.registry.has(name)) return nok("unknown task");
    const soft = optionalNumber(args.soft);
    const hard = optionalNumber(args.hard);
    t.timeLimits.set(name, {
      ...(soft !== undefined && { soft }),
      ...(hard !== undefined && { hard }),
    });
    return ok("time limits set successfully");
  },
  pool_grow: (t, args) => {
    t.setConcurrency(t.concurrency() + (optionalNumber(args.n) ?? 1));
    return ok("pool will grow");
  },
  pool_shrink: (t, args) => {
    const n = optionalNumber(args.n) ?? 1;
    if (t.concurrency() - n < 1) return nok("pool_shrink would leave no slot: at least 1 stays");
    t.setConcurrency(t.concurrency() - n);
    return ok("pool will shrink");
  },
  add_consumer: (t, args) => {
    const queue = String(args.queue ?? "");
    if (!queue) return nok("add_consumer needs a queue name");
    if (t.queues().includes(queue)) return ok(`already consuming from ${queue}`);
    t.setQueues([...t.queues(), queue]);
    return ok(`add consumer ${queue}`);
  },
  cancel_consumer: (t, args) => {
    const queue = String(args.queue ?? "");
    t.setQueues(t.queues().filter((q) => q !== queue));
    return ok(`no longer consuming from ${queue}`);
  },
  enable_events: (t) => {
    if (t.taskEvents()) return ok("task events already enabled");
    t.setTaskEvents(true);
    return ok("task events enabled");
  },
  disable_events: (t) => {
    if (!t.taskEvents()) return ok("task events already disabled");
    t.setTaskEvents(false);
    return ok("task events disabled");
  },
  heartbeat: (t) => {
    t.sendHeartbeat();
    return null;
  },
  shutdown: (t, args) => {
    t.shutdown(typeof args.msg === "string" ? args.msg : "Got shutdown from remote");
    return null;
  },
  // Celery's mingle: a starting worker asks the others for their revoked ids ({id: time}).
  hello: (t, args) => {
    if (args.from_node === t.hostname) return null;
    mergeRevoked(t.revoked, args.revoked);
    return { revoked: t.revoked.entries(), clock: forwardClock() };
  },
};
const ALIASES: Record<string, string> = {
  dump_conf: "conf",
  dump_active: "active",
  dump_reserved: "reserved",
  dump_schedule: "scheduled",
  dump_revoked: "revoked",
  dump_tasks: "registered",
};

/** Runs one command; an unknown one or a failing one answers `{ error }` as Celery's do. */
export function runCommand(
  target: ControlTarget,
  method: string,
  args: Record<string, unknown>,
): unknown {
  const handler = HANDLERS[ALIASES[method] ?? method];
  if (!handler) return nok(`No such command: ${method}`);
  try {
    return handler(target, args);
  } catch (error) {
    return nok(String(error));
  }
}

/** kombu's `Queue.as_dict(recurse=True)` for a queue consumed as Celery declares it. */
function queueInfo(name: string): Record<string, unknown> {
  return {
    name,
    exchange: {
      name,
      type: "direct",
      arguments: null,
      durable: true,
      passive: false,
      auto_delete: false,
      delivery_mode: null,
      no_declare: false,
    },
    routing_key: name,
    queue_arguments: null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: null,
  };
}
