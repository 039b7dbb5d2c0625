import { randomUUID } from "node:crypto";
import type { Broadcast, BroadcastSubscription, ExchangeRef } from "./broadcast.ts";
import { CeleryTsError } from "./errors.ts";
import { encodeJson } from "./json.ts";
import { JSON_CONTENT_TYPE, type WireMessage } from "./task-message.ts";

/**
 * kombu's pidbox, the mailbox Celery's remote control rides on: requests go to the fanout
 * exchange `<namespace>.pidbox`, every worker listening on its own `<hostname>.<namespace>.pidbox`
 * queue; replies go to the direct exchange `reply.<namespace>.pidbox` with the caller's routing
 * key, tagged with the request's `ticket`. Celery's namespace is `celery`.
 */
export const DEFAULT_MAILBOX_NAMESPACE = "celery";

export function mailboxExchange(namespace = DEFAULT_MAILBOX_NAMESPACE): ExchangeRef {
  return { name: `${namespace}.pidbox`, type: "fanout" };
}

export function replyExchange(namespace = DEFAULT_MAILBOX_NAMESPACE): ExchangeRef {
  return { name: `reply.${namespace}.pidbox`, type: "direct" };
}

/** A worker's own mailbox queue. */
export function mailboxQueue(hostname: string, namespace = DEFAULT_MAILBOX_NAMESPACE): string {
  return `${hostname}.${namespace}.pidbox`;
}

/** A control request as it travels in the mailbox (kombu's `Mailbox._publish` body). */
export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  /** Node names that should act on it; null or empty: every node. */
  destination: string[] | null;
  /** With `matcher` ("glob" or "pcre"): nodes whose name matches act on it. */
  pattern: string | null;
  matcher: string | null;
  /** Present when replies are wanted. */
  ticket?: string;
  reply_to?: { exchange: string; routing_key: string };
}

let clock = 0;

/**
 * kombu's Lamport clock (one per process, as a Celery app has one): forwarded on every control
 * message and event sent; adjusted by every one received, so that the processes of a fleet agree
 * on the order of what happened.
 */
export function forwardClock(): number {
  return ++clock;
}

/** Moves the clock past a received message's (kombu's `LamportClock.adjust`); returns the new value. */
export function adjustClock(other: unknown): number {
  const value = typeof other === "string" && other.trim() !== "" ? Number(other) : other;
  if (typeof value === "number" && Number.isFinite(value)) clock = Math.max(clock, value) + 1;
  return clock;
}

/** The clock's value now, without moving it (`inspect stats` shows it). */
export function clockValue(): number {
  return clock;
}

/** A JSON message for a mailbox or the event exchange (transient, as kombu sends them). */
export function jsonWireMessage(body: unknown, headers: Record<string, unknown>): WireMessage {
  return {
    body: encodeJson(body),
    contentType: JSON_CONTENT_TYPE,
    contentEncoding: "utf-8",
    headers,
    properties: { delivery_mode: 1 },
  };
}

/** The JSON body of a mailbox or event message; undefined when it is not JSON. */
export function parseJsonBody(message: WireMessage): unknown {
  if (message.contentType !== JSON_CONTENT_TYPE) return undefined;
  try {
    return JSON.parse(message.body) as unknown;
  } catch {
    return undefined;
  }
}

/** Reads a control request; undefined when the message is not one. */
export function parseControlRequest(message: WireMessage): ControlRequest | undefined {
  const body = parseJsonBody(message);
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.method !== "string") return undefined;
  const args = b.arguments;
  const replyTo = b.reply_to as { exchange?: unknown; routing_key?: unknown } | null | undefined;
  return {
    method: b.method,
    arguments:
      typeof args === "object" && args !== null && !Array.isArray(args)
        ? (args as Record<string, unknown>)
        : {},
    destination: Array.isArray(b.destination) ? b.destination.map(String) : null,
    pattern: typeof b.pattern === "string" ? b.pattern : null,
    matcher: typeof b.matcher === "string" ? b.matcher : null,
    ...(typeof b.ticket === "string" && { ticket: b.ticket }),
    ...(replyTo &&
      typeof replyTo.exchange === "string" &&
      typeof replyTo.routing_key === "string" && {
        reply_to: { exchange: replyTo.exchange, routing_key: replyTo.routing_key },
      }),
  };
}

/** Whether the node `hostname` should act on `request` (kombu's destination/pattern rules). */
export function isAddressedTo(request: ControlRequest, hostname: string): boolean {
  if (request.destination && request.destination.length > 0) {
    return request.destination.includes(hostname);
  }
  if (request.pattern && request.matcher) {
    if (request.matcher === "pcre") return new RegExp(request.pattern).test(hostname);
    if (request.matcher === "glob") return globToRegExp(request.pattern).test(hostname);
    return false;
  }
  return true;
}

function globToRegExp(glob: string): RegExp {
  const source = glob
    .split("")
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`);
}

export interface ControlCallOptions {
  /** Only these nodes act and reply. @default every node */
  destination?: readonly string[];
  /** With `matcher`, only nodes whose name matches act ("glob" or "pcre"). */
  pattern?: string;
  matcher?: "glob" | "pcre";
  /** Seconds to wait for replies. @default 1 (Celery's) */
  timeout?: number;
  /** Stop waiting after this many replies. @default the number of destinations, else none */
  limit?: number;
  /** Called on each reply as it arrives. */
  onReply?: (reply: Record<string, unknown>) => void;
  /** The mailbox namespace. @default "celery" */
  namespace?: string;
  /** Stops waiting for replies when aborted. */
  signal?: AbortSignal;
}

/** One node's reply: `{ "<node name>": <its answer> }`, as Celery's `broadcast(reply=True)` returns. */
export type ControlReply = Record<string, unknown>;

function requestBody(
  method: string,
  args: Record<string, unknown>,
  options: ControlCallOptions,
): ControlRequest {
  return {
    method,
    arguments: args,
    destination: options.destination ? [...options.destination] : null,
    pattern: options.pattern ?? null,
    matcher: options.matcher ?? null,
  };
}

/** Sends a control command to the fleet without waiting for replies (kombu's `cast`). */
export async function castControl(
  broadcast: Broadcast,
  method: string,
  args: Record<string, unknown> = {},
  options: ControlCallOptions = {},
): Promise<void> {
  const body = requestBody(method, args, options);
  await broadcast.publish(
    mailboxExchange(options.namespace),
    "",
    jsonWireMessage(body, { clock: forwardClock(), expires: 0 }),
  );
}

/**
 * Sends a control command and collects the replies that arrive within `timeout` (kombu's
 * `multi_call`): what `celery inspect` and `celery control` do.
 */
export async function callControl(
  broadcast: Broadcast,
  method: string,
  args: Record<string, unknown> = {},
  options: ControlCallOptions = {},
): Promise<ControlReply[]> {
  const timeout = options.timeout ?? 1;
  if (!(timeout > 0)) {
    throw new CeleryTsError(
      "CONFIG",
      `timeout must be a positive number of seconds, not ${timeout}`,
    );
  }
  const limit = options.limit ?? (options.destination?.length || undefined);
  const oid = randomUUID();
  const ticket = randomUUID();
  const replies: ControlReply[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const subscription: BroadcastSubscription = await broadcast.subscribe(
    replyExchange(options.namespace),
    { name: `${oid}.${replyExchange(options.namespace).name}`, expires: 10 },
    oid,
    ({ message }) => {
      adjustClock(message.headers.clock);
      if ((message.headers.ticket ?? ticket) !== ticket) return;
      const reply = parseJsonBody(message);
      if (typeof reply !== "object" || reply === null || Array.isArray(reply)) return;
      replies.push(reply as ControlReply);
      options.onReply?.(reply as ControlReply);
      if (limit !== undefined && replies.length >= limit) done();
    },
  );
  const timer = setTimeout(done, timeout * 1000);
  options.signal?.addEventListener("abort", done, { once: true });
  try {
    const body: ControlRequest = {
      ...requestBody(method, args, options),
      ticket,
      reply_to: { exchange: replyExchange(options.namespace).name, routing_key: oid },
    };
    await broadcast.publish(
      mailboxExchange(options.namespace),
      "",
      jsonWireMessage(body, { clock: forwardClock(), expires: Date.now() / 1000 + timeout }),
    );
    await finished;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", done);
    await subscription.close();
  }
  return replies;
}
