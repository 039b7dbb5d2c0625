import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  CeleryTsError,
  resolveStore,
  resolveTransport,
  silentLogger,
  type CoordinationStore,
  type Logger,
  type Transport,
} from "@celery-ts/core";
import { parseEntry, type BeatEntry, type ParsedEntry } from "./beat-entry.ts";
import { runBeatLoop } from "./beat-loop.ts";
import { beatKeys, createBeatSchedule, type BeatSchedule } from "./beat-schedule.ts";
import { connectAllOnStartup } from "../internal/connect-on-startup.ts";
import { createLeaderLease } from "./leader-lease.ts";
import type { PassContext } from "./leader-pass.ts";

export interface BeatOptions {
  /** Where the tasks are sent: a transport, or a broker URL. */
  broker: Transport | string;
  /**
   * Where the lease, the tick records and run-time entries live, shared by every instance: a
   * store, or a URL (`redis://...`, `sqlite:///...`, `postgres://...`). Required when the broker has no store of its
   * own (RabbitMQ, SQS) or is given as an object.
   * @default the broker's URL
   */
  store?: CoordinationStore | string;
  /** Entries from code or a config file. Entries added at run time live in the store. @default [] */
  entries?: BeatEntry[];
  /** Separates the schedules of unrelated apps sharing a store. @default "default" */
  namespace?: string;
  /** The time zone of crontab entries that name none (Celery's `timezone`). @default "UTC" */
  timezone?: string;
  /**
   * The leader's lease: the longest the fleet goes without a send when its leader dies (killed,
   * paused, cut off), counted from the leader's last send. The others take over within it.
   * @default 5
   */
  leaseSeconds?: number;
  /**
   * Ticks late by at most this long are sent one by one (so a failover loses none); older ones
   * follow each entry's `catchUp` policy.
   * @default twice leaseSeconds
   */
  graceSeconds?: number;
  /**
   * As the worker's: wait for an unreachable broker or store at `start()`, retrying with backoff
   * and logging each attempt; `false` rejects at once.
   * @default true
   */
  brokerConnectionRetryOnStartup?: boolean;
  /** @default silentLogger */
  logger?: Logger;
}

export interface Beat {
  /** Resolves once the broker and store are reachable and the loop runs. Idempotent. */
  start(): Promise<void>;
  /** Stops the loop, hands the lease over (so another instance leads at once), closes what it opened. */
  stop(): Promise<void>;
  /** Resolves when the beat has stopped. */
  readonly stopped: Promise<void>;
  /** Whether this instance leads now (sends the ticks). */
  readonly isLeader: boolean;
  /** The schedule kept in the store: list, add, remove, pause, resume (after `start()`). */
  readonly schedule: BeatSchedule;
}

const DEFAULT_LEASE_SECONDS = 5;

function seconds(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw new CeleryTsError(
      "CONFIG",
      `${name} must be a number of seconds > 0, got ${String(value)}`,
      {
        pkg: "worker",
      },
    );
  }
  return value;
}

/** The options, checked, with their defaults. */
function resolveConfig(options: BeatOptions) {
  const timezone = options.timezone ?? "UTC";
  const leaseMs = seconds("leaseSeconds", options.leaseSeconds, DEFAULT_LEASE_SECONDS) * 1000;
  const graceMs = seconds("graceSeconds", options.graceSeconds, (leaseMs * 2) / 1000) * 1000;
  const staticEntries = new Map<string, ParsedEntry>();
  for (const entry of options.entries ?? []) {
    const parsed = parseEntry(entry, timezone);
    if (staticEntries.has(entry.name)) {
      throw new CeleryTsError(
        "CONFIG",
        `two beat entries are named ${JSON.stringify(entry.name)}`,
        {
          pkg: "worker",
        },
      );
    }
    staticEntries.set(entry.name, parsed);
  }
  const storeSpec =
    options.store ?? (typeof options.broker === "string" ? options.broker : undefined);
  if (storeSpec === undefined) {
    throw new CeleryTsError(
      "CONFIG",
      "beat needs a coordination store: give store (a redis://, sqlite:/// or postgres:// URL, or a " +
        "store) when the broker is an object",
      { pkg: "worker" },
    );
  }
  return {
    logger: options.logger ?? silentLogger,
    namespace: options.namespace ?? "default",
    timezone,
    leaseMs,
    graceMs,
    staticEntries,
    storeSpec,
  };
}

type BeatConfig = ReturnType<typeof resolveConfig>;

/**
 * Connects to the broker and the store, and sets up what the loop works with; undefined when
 * `signal` (stop()) aborted the wait for them: what it opened is closed then.
 */
async function openBeat(
  options: BeatOptions,
  config: BeatConfig,
  signal: AbortSignal,
): Promise<{ pass: PassContext; schedule: BeatSchedule } | undefined> {
  const { logger, namespace, timezone, leaseMs } = config;
  const keys = beatKeys(namespace);
  const instanceId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const transport = await resolveTransport(options.broker, { logger });
  let store: CoordinationStore | undefined;
  // Ours to close: a stop() meanwhile ends a connection attempt under way at once.
  const closeOwn = async (): Promise<void> => {
    if (store && typeof options.store !== "object") await store.close().catch(() => undefined);
    if (typeof options.broker === "string") await transport.close().catch(() => undefined);
  };
  const onAbort = (): void => void closeOwn();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    store = await resolveStore(config.storeSpec, { logger });
    const connected = store;
    const ready = await connectAllOnStartup(
      [
        {
          what: "broker",
          given: options.broker,
          name: `${transport.name} transport`,
          connect: () => transport.connect(),
        },
        {
          what: "coordination store",
          given: config.storeSpec,
          name: `${connected.name} store`,
          connect: () => connected.connect(),
        },
      ],
      { log: logger, retry: options.brokerConnectionRetryOnStartup ?? true, signal },
    );
    if (!ready || signal.aborted) {
      await closeOwn();
      return undefined;
    }
  } catch (error) {
    await closeOwn();
    if (signal.aborted) return undefined;
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  const lease = createLeaderLease({ store, keys, instanceId, leaseMs, logger });
  // The broker on the store's server: a tick is published and recorded in one atomic step.
  const atomic = store.atomicPublisher?.(transport);
  logger.info("beat: started", {
    instance: instanceId,
    namespace,
    entries: config.staticEntries.size,
    store: store.name,
    leaseSeconds: leaseMs / 1000,
    sending: atomic ? "exactly once (atomic publish and record)" : "at least once (two steps)",
  });
  const pass: PassContext = {
    store,
    transport,
    atomic,
    lease,
    keys,
    namespace,
    timezone,
    graceMs: config.graceMs,
    staticEntries: config.staticEntries,
    logger,
    reported: new Set(),
  };
  return { pass, schedule: createBeatSchedule({ store, namespace, timezone }) };
}

/**
 * Periodic tasks, run by any number of instances against one store: one of them leads (holds the
 * lease) and sends each tick, once. See docs/beat.md for how, and for the guarantees.
 */
export function createBeat(options: BeatOptions): Beat {
  const config = resolveConfig(options);
  let opened: { pass: PassContext; schedule: BeatSchedule } | undefined;
  let starting: Promise<void> | undefined;
  let loop: Promise<void> | undefined;
  let stopping = false;
  // Aborted by stop(): ends the wait for the broker and the store at startup.
  const aborter = new AbortController();
  let wakeUp: (() => void) | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const sleep = (until: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, until - Date.now()));
      function done(): void {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
    });
  const open = async (): Promise<void> => {
    opened = await openBeat(options, config, aborter.signal);
    if (!opened) return;
    // A follower also looks now and then whether the lease was given up (on shutdown).
    const followerPollMs = Math.min(500, config.leaseMs / 10);
    const stoppingNow = () => stopping;
    loop = runBeatLoop({
      pass: opened.pass,
      logger: config.logger,
      followerPollMs,
      stopping: stoppingNow,
      sleep,
    });
  };

  return {
    start() {
      starting ??= open();
      return starting;
    },
    async stop() {
      if (stopping) return stopped;
      stopping = true;
      aborter.abort();
      wakeUp?.();
      try {
        await starting?.catch(() => undefined);
        await loop;
        await opened?.pass.lease.release().catch(() => undefined);
      } finally {
        const { store, transport } = opened?.pass ?? {};
        if (typeof options.store !== "object") await store?.close().catch(() => undefined);
        if (typeof options.broker === "string") await transport?.close().catch(() => undefined);
        resolveStopped();
      }
      return stopped;
    },
    stopped,
    get isLeader() {
      return opened?.pass.lease.token !== undefined;
    },
    get schedule() {
      if (!opened) {
        throw new CeleryTsError("CONFIG", "beat.schedule is there once start() has resolved", {
          pkg: "worker",
        });
      }
      return opened.schedule;
    },
  };
}
