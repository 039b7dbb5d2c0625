import {
  CeleryTsError,
  adjustClock,
  callControl,
  resolveBroadcast,
  type Broadcast,
  type BroadcastSubscription,
  type Logger,
  type TaskDefinition,
  type TaskMessage,
  type Transport,
} from "@celery-ts/core";
import { WorkerEvents } from "../events/worker-events.ts";
import { mergeRevoked } from "./commands.ts";
import { listenMailbox } from "./mailbox.ts";
import { RequestTracker } from "./requests.ts";
import { RevokedSet } from "./revoked.ts";
import { createControlTarget } from "./target.ts";

/** The options of `createWorker` that remote control, revokes and events read. */
export interface ControlOptions {
  /**
   * Answer remote control (`celery inspect`, `celery control`, `celery-ts inspect`...) on the
   * broker's pidbox. Off, revokes sent later are not seen either.
   * @default true
   */
  remoteControl?: boolean;
  /** Send task events (`task-received`, `task-succeeded`...), as Celery's `-E`. @default false */
  taskEvents?: boolean;
  /** Send worker-online, worker-heartbeat (every 2 s) and worker-offline. @default true */
  heartbeat?: boolean;
  /**
   * A file where revoked task ids are kept across restarts, as Celery's `--statedb` (its format
   * is ours: JSON). Without it, a restarted worker forgets earlier revokes.
   */
  stateDb?: string;
  /** The most revoked ids remembered. @default 50_000 (Celery's) */
  maxRevoked?: number;
  /** Seconds a revoked id is remembered. @default 10_800 (Celery's 3 hours) */
  revokedExpires?: number;
  /**
   * Called when `rate_limit` changes a task's rate (`"10/s"`, or null for none), after the
   * worker's rate limiter applied it (`inspect registered` shows it too).
   */
  onRateLimit?: (task: string, rate: string | null) => void;
}

/** What the worker lends to remote control: its knobs, as closures over its own state. */
export interface WorkerInternals {
  hostname: string;
  registry: ReadonlyMap<string, TaskDefinition>;
  logger: Logger;
  concurrency(): number;
  setConcurrency(n: number): void;
  prefetch(): number;
  queues(): readonly string[];
  setQueues(queues: readonly string[]): void;
  /** Applies a `rate_limit` command's rate (already validated) to the worker's rate limiter. */
  setRateLimit(task: string, rate: string | null): void;
  shutdown(reason: string): void;
  startedAt: number;
  describe(): { transport: string; broker?: string; backend?: string };
}

/** The options remote control reads: its own, and the recycling limits `inspect conf` shows. */
export type WorkerControlOptions = ControlOptions & {
  maxTasksPerChild?: number;
  maxMemoryPerChild?: number;
};

/** Remote control, revokes and events of one worker. */
export function createWorkerControl(options: WorkerControlOptions, worker: WorkerInternals) {
  const { hostname, logger } = worker;
  const requests = new RequestTracker(hostname);
  const revoked = new RevokedSet({
    ...(options.maxRevoked !== undefined && { maxSize: options.maxRevoked }),
    ...(options.revokedExpires !== undefined && { expires: options.revokedExpires }),
    ...(options.stateDb !== undefined && { statePath: options.stateDb }),
    onError: (message, error) => logger.error(message, { error: String(error) }),
  });
  const events = new WorkerEvents({
    hostname,
    logger,
    taskEvents: options.taskEvents ?? false,
    workerEvents: options.heartbeat ?? true,
    counts: () => ({ active: requests.activeCount, processed: requests.processed }),
  });
  const rateLimits = new Map<string, string | null>();
  const timeLimits = new Map<string, { soft?: number; hard?: number }>();
  const state = { requests, revoked, events, rateLimits, timeLimits };
  const target = createControlTarget(options, worker, state);
  let broadcast: Broadcast | undefined;
  let mailbox: BroadcastSubscription | undefined;
  let stopping = false;

  return {
    requests,
    revoked,
    events,
    rateLimits: rateLimits as ReadonlyMap<string, string | null>,
    timeLimits: timeLimits as ReadonlyMap<string, { soft?: number; hard?: number }>,

    /** Subscribes the mailbox and starts heartbeats; a broker without broadcast only logs. */
    async start(broker: Transport | string): Promise<void> {
      const wanted = options.remoteControl !== false || events.taskEvents || options.heartbeat;
      if (!wanted) return;
      broadcast = await openBroadcast(broker, logger);
      if (!broadcast) return;
      if (options.remoteControl !== false) {
        mailbox = await listenMailbox(broadcast, target, logger);
        void mingle(broadcast, hostname, revoked, logger, () => stopping);
      }
      events.start(broadcast);
    },

    async stop(): Promise<void> {
      stopping = true;
      await mailbox?.close().catch(() => undefined);
      await events.stop();
      await broadcast?.close().catch(() => undefined);
      revoked.flush();
    },

    /** A task about to be run or held: false when it was revoked (then store it REVOKED). */
    received(message: TaskMessage, queue: string, scheduled: boolean): void {
      requests.received(message, queue, scheduled);
      events.received(message);
    },

    isRevoked: (id: string) => revoked.has(id),
  };
}

/** The broker's broadcast, connected; undefined (logged) for a broker that has none. */
async function openBroadcast(
  broker: Transport | string,
  logger: Logger,
): Promise<Broadcast | undefined> {
  let broadcast: Broadcast | undefined;
  try {
    broadcast = await resolveBroadcast(broker, { logger });
    await broadcast.connect();
    return broadcast;
  } catch (error) {
    if (error instanceof CeleryTsError && error.code === "CONFIG") {
      logger.info(`remote control and events are off: ${error.message}`);
      return undefined;
    }
    // The caller never holds it, so its stop() cannot: close what was resolved.
    await broadcast?.close().catch(() => undefined);
    throw error;
  }
}

/** Celery's mingle: learns the revoked ids the running workers know, in the background. */
async function mingle(
  on: Broadcast,
  hostname: string,
  revoked: RevokedSet,
  logger: Logger,
  stopping: () => boolean,
): Promise<void> {
  try {
    const replies = await callControl(on, "hello", { from_node: hostname, revoked: {} }, {});
    for (const reply of replies) {
      for (const answer of Object.values(reply)) {
        const { revoked: ids, clock } = (answer ?? {}) as { revoked?: unknown; clock?: unknown };
        mergeRevoked(revoked, ids);
        // Celery's mingle: the new worker's clock starts past the fleet's.
        adjustClock(clock);
      }
    }
    if (replies.length > 0) logger.debug("synced revoked ids", { nodes: replies.length });
  } catch (error) {
    if (!stopping())
      logger.warn("could not sync revoked ids with other workers", { error: String(error) });
  }
}

export type WorkerControl = ReturnType<typeof createWorkerControl>;
