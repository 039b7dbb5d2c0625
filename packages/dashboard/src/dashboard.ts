import { createClient, type Client } from "@celery-ts/client";
import {
  callControl,
  receiveEvents,
  resolveBroadcast,
  resolveTransport,
  silentLogger,
  type Broadcast,
  type BroadcastSubscription,
  type Logger,
  type Transport,
} from "@celery-ts/core";
import { createActions } from "./actions.ts";
import { FleetState } from "./fleet-state.ts";
import { checkBinding, type DashboardAuth } from "./internal/auth.ts";
import { startHttpServer, type HttpServer } from "./internal/http-server.ts";
import { QueueWatch } from "./internal/queue-watch.ts";

export interface DashboardOptions {
  /** The broker URL (`redis://...`, `amqp://...`, `sqlite:///...`). */
  broker: string;
  /** The result backend URL, for results of tasks the events did not carry. */
  backend?: string;
  /** The address to listen on. Any address other than loopback requires `auth`. @default "127.0.0.1" */
  host?: string;
  /** The port; 0 picks a free one. @default 5555 (Flower's) */
  port?: number;
  /** A token (`Authorization: Bearer`, or `?token=` once) or basic auth credentials. @default none */
  auth?: DashboardAuth | undefined;
  /** Queues to show even before a worker reports consuming them. @default ["celery"] */
  queues?: string[];
  /** Tasks kept in memory, newest first. @default 10000 */
  maxTasks?: number;
  /** Ask the workers to send task events (`enable_events`) at start. @default true */
  enableEvents?: boolean;
  /**
   * Seconds between broker polls (queue depths, `inspect stats`); dead letters are counted every
   * sixth poll (and when their list is opened, or after an action on them). @default 5
   */
  pollInterval?: number;
  /** @default silentLogger */
  logger?: Logger;
}

export interface Dashboard {
  /** `http://127.0.0.1:5555/` */
  readonly url: string;
  readonly state: FleetState;
  close(): Promise<void>;
}

/** Starts the dashboard: subscribes to the events, polls the broker, serves the page. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? "127.0.0.1";
  checkBinding(host, options.auth);
  const logger = options.logger ?? silentLogger;
  const state = new FleetState({ maxTasks: options.maxTasks ?? 10_000 });
  const transport: Transport = await resolveTransport(options.broker);
  const broadcast: Broadcast = await resolveBroadcast(options.broker);
  const client: Client = createClient({
    broker: options.broker,
    ...(options.backend !== undefined && { backend: options.backend }),
  });
  let subscription: BroadcastSubscription | undefined;
  let server: HttpServer | undefined;
  const every = (options.pollInterval ?? 5) * 1000;
  const queues = new QueueWatch(transport, options.queues ?? ["celery"], {
    deadLetterEvery: every * 6,
  });
  const poll = async (): Promise<void> => {
    try {
      await refreshWorkers(broadcast, state, queues);
      await queues.refresh();
    } catch (error) {
      logger.warn("dashboard: polling the broker failed", { error: String(error) });
    }
  };
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  /** The next poll, once this one is done: polls never overlap, however slow the broker. */
  const schedule = (): void => {
    if (closed) return;
    timer = setTimeout(() => void poll().finally(schedule), every);
    timer.unref();
  };
  try {
    await transport.connect();
    await broadcast.connect();
    subscription = await receiveEvents(broadcast, (event) => state.add(event));
    if (options.enableEvents ?? true) await client.control.cast("enable_events");
    await poll();
    schedule();
    server = await startHttpServer({
      host,
      port: options.port ?? 5555,
      auth: options.auth,
      state,
      queues,
      transport,
      actions: createActions({ client, transport, state, queues, logger }),
      logger,
    });
  } catch (error) {
    closed = true;
    clearTimeout(timer);
    await Promise.allSettled([
      subscription?.close(),
      broadcast.close(),
      transport.close(),
      client.close(),
    ]);
    throw error;
  }
  const opened = server;
  logger.info("dashboard listening", { url: opened.url });
  return {
    url: opened.url,
    state,
    async close() {
      closed = true;
      clearTimeout(timer);
      await opened.close();
      await Promise.allSettled([subscription?.close(), client.close()]);
      await Promise.allSettled([broadcast.close(), transport.close()]);
    },
  };
}

/** `inspect stats` and `active_queues`: concurrency and the queues each worker consumes. */
async function refreshWorkers(
  broadcast: Broadcast,
  state: FleetState,
  queues: QueueWatch,
): Promise<void> {
  const [stats, active, held] = await Promise.all([
    callControl(broadcast, "stats", {}, { timeout: 1 }),
    callControl(broadcast, "active_queues", {}, { timeout: 1 }),
    heldByQueue(broadcast),
  ]);
  for (const reply of stats) {
    for (const [node, answer] of Object.entries(reply)) {
      const pool = (answer as { pool?: Record<string, unknown> } | null)?.pool;
      const row = state.workers.get(node);
      if (row && typeof pool?.["max-concurrency"] === "number")
        row.concurrency = pool["max-concurrency"];
    }
  }
  for (const reply of active) {
    for (const [node, answer] of Object.entries(reply)) {
      if (!Array.isArray(answer)) continue;
      const names = answer
        .map((q: { name?: unknown }) => q.name)
        .filter((n): n is string => typeof n === "string");
      const row = state.workers.get(node);
      if (row) row.queues = names;
      for (const name of names) queues.add(name);
    }
  }
  queues.setReserved(held);
}

/** The messages the workers hold (running, prefetched), counted by queue (routing key). */
async function heldByQueue(broadcast: Broadcast): Promise<Map<string, number>> {
  const replies = await Promise.all(
    ["active", "reserved"].map((command) => callControl(broadcast, command, {}, { timeout: 1 })),
  );
  const counts = new Map<string, number>();
  for (const answer of replies.flat().flatMap((reply) => Object.values(reply))) {
    if (!Array.isArray(answer)) continue;
    for (const request of answer as { delivery_info?: { routing_key?: unknown } }[]) {
      const queue = request.delivery_info?.routing_key;
      if (typeof queue === "string") counts.set(queue, (counts.get(queue) ?? 0) + 1);
    }
  }
  return counts;
}
