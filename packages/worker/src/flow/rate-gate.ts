import {
  CeleryTsError,
  type CoordinationStore,
  type Logger,
  type Rate,
  type TaskDefinition,
  type TaskMessage,
} from "@celery-ts/core";
import { setLongTimeout, type LongTimeout } from "../internal/long-timeout.ts";
import { fleetWindow, groupOf, parseRate, rateRule, type RateRule } from "./rate.ts";

interface GateJob {
  message: TaskMessage;
  task: TaskDefinition;
}

export interface RateGateOptions<J extends GateJob> {
  /** The worker's tasks, by name. */
  tasks: ReadonlyMap<string, TaskDefinition>;
  /** Called when a job may run: it goes to the worker's ready queue. */
  release(job: J): void;
  /**
   * Called with +1/-1 as waiting jobs come and go, up to `maxExtraPrefetch` in all: the worker
   * raises its prefetch by that much, so messages that wait do not keep others from being fetched.
   */
  adjustPrefetch(delta: number): void;
  maxExtraPrefetch: number;
  /** The coordination store for fleet-wide limits, once the worker has connected it. */
  store(): CoordinationStore | undefined;
  log: Logger;
}

export interface RateGate<J extends GateJob> {
  /** Releases the job now, or when its task's rate allows; until then it waits (unacknowledged). */
  submit(job: J): void;
  /** Changes a task's rate from now on (`null` or 0: no limit); a CONFIG error for a bad rate. */
  setRateLimit(task: string, rate: Rate): void;
  /** The tasks with a fleet-wide limit: the worker needs a store for them. */
  readonly fleetTasks: readonly string[];
  /** Removes and returns every waiting job (at shutdown, to requeue them). */
  drain(): J[];
}

interface Bucket<J> {
  task: string;
  group: string;
  queue: J[];
  /** When the last job was released (worker scope): the next may go `spacing` later. */
  lastAt: number;
  timer: LongTimeout | undefined;
  /** A store request is under way (fleet scope). */
  busy: boolean;
}

/** Wait after a store error before asking again; the message stays unacknowledged meanwhile. */
const STORE_RETRY_MS = 1_000;

/** A gate's state, shared by the functions below. */
interface Gate<J extends GateJob> {
  options: RateGateOptions<J>;
  rules: Map<string, RateRule>;
  buckets: Map<string, Bucket<J>>;
  /** Jobs in all buckets. */
  waiting: number;
  /** Set by drain(): a store answer that arrives later arms no timer. */
  drained: boolean;
}

/**
 * Celery's per-task rate limits, held before the concurrency slots: a job that must wait sits in
 * its task's (and group's) bucket, unacknowledged, with one timer per bucket set for the moment
 * it may go; nothing polls. Worker scope spaces runs evenly (Celery's token bucket of capacity 1);
 * fleet scope counts runs in fixed windows in the coordination store, shared by every worker.
 */
export function createRateGate<J extends GateJob>(options: RateGateOptions<J>): RateGate<J> {
  const rules = new Map<string, RateRule>();
  for (const [name, task] of options.tasks) rules.set(name, rateRule(task.options.rateLimit, name));
  const gate: Gate<J> = { options, rules, buckets: new Map(), waiting: 0, drained: false };
  return {
    submit(job) {
      const rule = rules.get(job.task.name);
      if (!rule?.rate) return options.release(job);
      const bucket = bucketOf(gate, job, rule);
      bucket.queue.push(job);
      countWaiting(gate, 1);
      pump(gate, bucket);
    },
    setRateLimit: (task, rate) => setRateLimit(gate, task, rate),
    get fleetTasks() {
      return [...rules].filter(([, rule]) => rule.scope === "fleet").map(([name]) => name);
    },
    drain() {
      gate.drained = true;
      const jobs: J[] = [];
      for (const bucket of gate.buckets.values()) {
        bucket.timer?.clear();
        jobs.push(...bucket.queue.splice(0));
      }
      gate.buckets.clear();
      countWaiting(gate, -jobs.length);
      return jobs;
    },
  };
}

/** The bucket of the job's task and group, made on first use. */
function bucketOf<J extends GateJob>(gate: Gate<J>, job: J, rule: RateRule): Bucket<J> {
  const group = groupOf(job.message, rule.groupBy);
  const id = `${job.task.name}\0${group}`;
  let bucket = gate.buckets.get(id);
  if (!bucket) {
    bucket = {
      task: job.task.name,
      group,
      queue: [],
      lastAt: 0,
      timer: undefined,
      busy: false,
    };
    gate.buckets.set(id, bucket);
  }
  return bucket;
}

function setRateLimit<J extends GateJob>(gate: Gate<J>, task: string, rate: Rate): void {
  const rule = gate.rules.get(task);
  if (!rule) {
    const known = [...gate.rules.keys()].join(", ") || "none";
    throw new CeleryTsError(
      "CONFIG",
      `cannot set the rate limit of "${task}": this worker registers ${known}`,
      { pkg: "worker" },
    );
  }
  gate.rules.set(task, { ...rule, rate: parseRate(rate, task) });
  gate.options.log.info("rate limit changed", { task, rate });
  for (const bucket of gate.buckets.values()) {
    if (bucket.task !== task) continue;
    bucket.timer?.clear();
    bucket.timer = undefined;
    pump(gate, bucket);
  }
}

/** Tells the worker how many jobs wait (up to `maxExtraPrefetch`), as they come and go. */
function countWaiting<J extends GateJob>(gate: Gate<J>, delta: number): void {
  const { maxExtraPrefetch } = gate.options;
  const before = Math.min(gate.waiting, maxExtraPrefetch);
  gate.waiting += delta;
  const after = Math.min(gate.waiting, maxExtraPrefetch);
  if (after !== before) gate.options.adjustPrefetch(after - before);
}

function releaseHead<J extends GateJob>(gate: Gate<J>, bucket: Bucket<J>): void {
  const job = bucket.queue.shift();
  if (!job) return;
  countWaiting(gate, -1);
  gate.options.release(job);
}

/** Pumps the bucket again in `ms`. */
function wake<J extends GateJob>(gate: Gate<J>, bucket: Bucket<J>, ms: number): void {
  if (gate.drained) return;
  bucket.timer = setLongTimeout(() => {
    bucket.timer = undefined;
    pump(gate, bucket);
  }, ms);
}

/** Releases what the bucket's rate allows now and sets its timer for the rest; forgets it when idle. */
function pump<J extends GateJob>(gate: Gate<J>, bucket: Bucket<J>): void {
  if (bucket.timer || bucket.busy) return;
  const rule = gate.rules.get(bucket.task)!;
  const rate = rule.rate;
  if (!rate) {
    while (bucket.queue.length > 0) releaseHead(gate, bucket);
  } else if (rule.scope === "fleet") {
    if (bucket.queue.length > 0) void acquire(gate, bucket, rule);
  } else {
    releaseSpaced(gate, bucket, rate.periodMs / rate.limit);
  }
  if (bucket.queue.length === 0 && !bucket.timer && !bucket.busy) {
    gate.buckets.delete(`${bucket.task}\0${bucket.group}`);
  }
}

/** Worker scope: releases jobs `spacing` ms apart, waking the bucket for the next. */
function releaseSpaced<J extends GateJob>(gate: Gate<J>, bucket: Bucket<J>, spacing: number): void {
  for (;;) {
    const wait = bucket.lastAt + spacing - Date.now();
    if (bucket.queue.length === 0) {
      // Kept until its spacing is over, so a new job cannot skip the gap; then forgotten.
      if (wait > 0) wake(gate, bucket, wait);
      return;
    }
    if (wait > 0) return wake(gate, bucket, wait);
    bucket.lastAt = Date.now();
    releaseHead(gate, bucket);
  }
}

/** Fleet scope: releases the runs the store grants, or waits for the next window (or a retry). */
async function acquire<J extends GateJob>(
  gate: Gate<J>,
  bucket: Bucket<J>,
  rule: RateRule,
): Promise<void> {
  bucket.busy = true;
  let outcome: { granted: number; waitMs: number };
  try {
    outcome = await takeFleetRuns(gate.options.store(), bucket, rule.rate!);
  } catch (error) {
    outcome = { granted: 0, waitMs: STORE_RETRY_MS };
    gate.options.log.warn(
      "could not count a fleet-wide rate limit in the store; waiting messages stay",
      { task: bucket.task, error: String(error), retryInMs: outcome.waitMs },
    );
  }
  bucket.busy = false;
  if (outcome.waitMs > 0) wake(gate, bucket, outcome.waitMs);
  else {
    for (let i = 0; i < outcome.granted; i++) releaseHead(gate, bucket);
    pump(gate, bucket);
  }
}

/**
 * Takes runs from the fleet's current window for the waiting jobs (up to a tenth of the window's
 * allowance in one store request, so that the store's latency does not bound the rate); with
 * none left, how long until the next window.
 */
async function takeFleetRuns<J>(
  store: CoordinationStore | undefined,
  bucket: Bucket<J>,
  rate: NonNullable<RateRule["rate"]>,
): Promise<{ granted: number; waitMs: number }> {
  if (!store) throw new Error("the coordination store is not connected");
  const { windowMs, allowance } = fleetWindow(rate);
  const want = Math.min(bucket.queue.length, Math.ceil(allowance / 10));
  const window = Math.floor(Date.now() / windowMs);
  const key = `rate:${bucket.task}:${bucket.group}:${windowMs}:${window}`;
  const count = await store.increment(key, { by: want, ttl: (2 * windowMs) / 1000 });
  // What was left of the window before this request, as far as it goes.
  const granted = Math.max(0, Math.min(want, allowance - (count - want)));
  return { granted, waitMs: granted === 0 ? Math.max(1, (window + 1) * windowMs - Date.now()) : 0 };
}
