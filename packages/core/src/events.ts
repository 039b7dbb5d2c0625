import { hostname as osHostname, loadavg, type as osType } from "node:os";
import type { Broadcast, BroadcastSubscription, ExchangeRef } from "./broadcast.ts";
import { EventJson } from "./internal/event-json.ts";
import { adjustClock, forwardClock, parseJsonBody } from "./pidbox.ts";
import { JSON_CONTENT_TYPE, type WireMessage } from "./task-message.ts";

export { utcOffsetHours } from "./internal/event-json.ts";

/**
 * Celery's monitoring events: JSON dicts with `type` (`worker-heartbeat`, `task-succeeded`...),
 * `hostname`, `timestamp`, `utcoffset`, `pid`, `clock` and the type's fields, published on the
 * topic exchange `celeryev` with the type as routing key (`task.succeeded`). What `celery events`
 * and Flower read.
 */
export const EVENT_EXCHANGE: ExchangeRef = { name: "celeryev", type: "topic", durable: true };

/** One event as Celery sends it. */
export interface CeleryEvent {
  type: string;
  hostname: string;
  timestamp: number;
  [field: string]: unknown;
}

/** What a worker says of itself in its worker-* events (Celery's `SOFTWARE_INFO`). */
export const SOFTWARE_INFO = {
  sw_ident: "celery-ts",
  sw_ver: "0.1.0",
  sw_sys: osType() === "Linux" ? "Linux" : osType(),
} as const;

/** The 1, 5 and 15 minute load averages, rounded as Celery's `load_average()` does. */
export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = loadavg();
  const round = (n: number): number => Math.round(n * 100) / 100;
  return [round(a), round(b), round(c)];
}

/** A node name for a process that is not a worker (a client sending task-sent events). */
export function anonNodename(): string {
  return `gen${process.pid}@${osHostname()}`;
}

export interface EventPublisher {
  /** The node name the events carry. */
  readonly hostname: string;
  /**
   * Sends one event; never throws (a monitoring event is not worth failing work for). An event of
   * a buffered group resolves once the batch it joined was published.
   */
  send(type: string, fields?: Record<string, unknown>): Promise<void>;
  /**
   * A task event: as `send(type, {uuid, ...fields})`, without making that object (a worker with
   * task events on sends three per task).
   */
  sendTask(type: string, uuid: string, fields?: Record<string, unknown>): Promise<void>;
  /** Publishes the buffered events now (before a worker-offline, at shutdown). */
  flush(): Promise<void>;
}

export interface EventPublisherOptions {
  hostname: string;
  onError?: (error: unknown, type: string) => void;
  /**
   * Event groups (the part of the type before the dash: `task` of `task-succeeded`) sent in
   * batches, as a Celery worker sends its task events: the events of one turn of the event loop
   * (at most `bufferLimit`) go out as one message, a JSON list on the routing key
   * `<group>.multi`. Every Celery event receiver (`celery events`, Flower) reads such lists.
   * @default none: every event is its own message
   */
  bufferGroups?: readonly string[];
  /** The most events in one batch (Celery's `buffer_limit`). @default 24 */
  bufferLimit?: number;
}

/** `groupOf` of the event types seen (a few dozen): no substring made per event. */
const groups = new Map<string, string>();

/** Celery's `group_from`: `task` of `task-succeeded`. */
function groupOf(type: string): string {
  let group = groups.get(type);
  if (group === undefined) {
    const dash = type.indexOf("-");
    group = dash === -1 ? type : type.slice(0, dash);
    if (groups.size < 256) groups.set(type, group);
  }
  return group;
}

/** Events of one group waiting for their publish, as JSON text, and that publish once it began. */
interface Batch {
  /** The events' text, with `, ` between them (no brackets yet). */
  text: string;
  count: number;
  /** The first event's type: a batch of one goes as that event, on its own routing key. */
  type: string;
  /** Resolves once the batch was published (or failed and was reported). */
  sent: Promise<void>;
  release(): void;
}

/**
 * Sends events as Celery's `EventDispatcher` does, batching the `bufferGroups` ones as its worker
 * does. Failures go to `onError` (a log line) and are otherwise dropped, as Celery drops what it
 * cannot send.
 *
 * Each event is written as JSON text when it is sent (see `EventJson`) onto its batch's text: the
 * events of a batch are encoded once, with no object per event, and an event that cannot be
 * encoded is reported alone instead of failing its batch.
 */
export function createEventPublisher(
  broadcast: Broadcast,
  options: EventPublisherOptions,
): EventPublisher {
  const { hostname } = options;
  const buffered = new Set(options.bufferGroups ?? []);
  const limit = Math.max(1, options.bufferLimit ?? 24);
  const batches = new Map<string, Batch>();
  const json = new EventJson(hostname);
  let tick: NodeJS.Immediate | undefined;

  const publish = async (body: string, routingKey: string, type: string): Promise<void> => {
    try {
      await broadcast.publish(EVENT_EXCHANGE, routingKey, eventMessage(body, { hostname }));
    } catch (error) {
      options.onError?.(error, type);
    }
  };

  const batchOf = (group: string): Batch => {
    let batch = batches.get(group);
    if (!batch) {
      batch = openBatch(group, publish, () => batches.delete(group));
      batches.set(group, batch);
    }
    return batch;
  };

  /** The event's text; undefined (reported) when it cannot be encoded. */
  const text = (
    type: string,
    fields: Record<string, unknown>,
    uuid: string | undefined,
  ): string | undefined => {
    try {
      return json.text(type, fields, forwardClock(), Date.now(), uuid);
    } catch (error) {
      options.onError?.(error, type);
      return undefined;
    }
  };

  const send = (
    type: string,
    fields: Record<string, unknown>,
    uuid: string | undefined,
  ): Promise<void> => {
    const event = text(type, fields, uuid);
    if (event === undefined) return Promise.resolve();
    const group = groupOf(type);
    if (!buffered.has(group)) return publish(event, type.replaceAll("-", "."), type);
    const batch = batchOf(group);
    if (batch.count++ === 0) {
      batch.type = type;
      batch.text = event;
    } else {
      batch.text += ", " + event;
    }
    // Celery's worker flushes on the next turn of its event loop, or once the buffer is full.
    if (batch.count >= limit) batch.release();
    else tick ??= setImmediate(() => void releaseAll());
    return batch.sent;
  };

  const releaseAll = (): Promise<void[]> => {
    clearImmediate(tick);
    tick = undefined;
    const pending = [...batches.values()];
    for (const batch of pending) batch.release();
    return Promise.all(pending.map((batch) => batch.sent));
  };

  return {
    hostname,
    send: (type, fields = {}) => send(type, fields, undefined),
    sendTask: (type, uuid, fields = {}) => send(type, fields, uuid),
    async flush() {
      await releaseAll();
    },
  };
}

/** An empty batch of `group`; `release` calls `gone` and publishes what the batch holds. */
function openBatch(
  group: string,
  publish: (body: string, routingKey: string, type: string) => Promise<void>,
  gone: () => void,
): Batch {
  let release!: () => void;
  const sent = new Promise<void>((resolve) => {
    release = () => {
      gone();
      const { text, count, type } = batch;
      if (count === 1) {
        // One event goes as itself, so receivers bound to its own routing key see it too.
        resolve(publish(text, type.replaceAll("-", "."), type));
      } else {
        resolve(publish(`[${text}]`, `${group}.multi`, `${group}-multi`));
      }
    };
  });
  const batch: Batch = { text: "", count: 0, type: "", sent, release };
  return batch;
}

/** An event message with its JSON text as body (transient, as kombu sends them). */
function eventMessage(body: string, headers: Record<string, unknown>): WireMessage {
  return {
    body,
    contentType: JSON_CONTENT_TYPE,
    contentEncoding: "utf-8",
    headers,
    properties: { delivery_mode: 1 },
  };
}

/**
 * Receives events (`#`: all of them, or a binding key such as `task.#`) until the subscription
 * is closed, on a private queue that the broker drops if it is left behind (Celery's receiver
 * queue settings: messages live 5 s, the queue 60 s).
 */
export function receiveEvents(
  broadcast: Broadcast,
  onEvent: (event: CeleryEvent) => void,
  options: { bindingKey?: string; queuePrefix?: string } = {},
): Promise<BroadcastSubscription> {
  const queue = `${options.queuePrefix ?? "celeryev"}.${crypto.randomUUID()}`;
  return broadcast.subscribe(
    EVENT_EXCHANGE,
    { name: queue, messageTtl: 5, expires: 60 },
    options.bindingKey ?? "#",
    ({ message }) => {
      const body = parseJsonBody(message);
      // A worker buffers task events and sends them as one list (routing key `task.multi`).
      for (const item of Array.isArray(body) ? body : [body]) {
        if (typeof item !== "object" || item === null) continue;
        const event = item as Partial<CeleryEvent>;
        if (typeof event.type !== "string") continue;
        // Celery's receiver keeps its Lamport clock in step with what it hears, except from
        // clients (task-sent), which never sync theirs.
        if (event.type !== "task-sent") adjustClock(event.clock);
        onEvent(event as CeleryEvent);
      }
    },
  );
}
