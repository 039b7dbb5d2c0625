import { CeleryTsError } from "../errors.ts";
import {
  createTaskMessage,
  parseCeleryDate,
  type Signature,
  type TaskMessage,
} from "../task-message.ts";
import type { PublishOptions } from "../transport.ts";
import { CARRIED_AS_HEADERS, stampNames } from "./signature-options.ts";
import { isRecord, signatureList } from "./signature.ts";

/** A message ready to publish, and where to. */
export interface PreparedMessage {
  message: TaskMessage;
  route: PublishOptions;
}

/** What a sender knows when it turns signatures into messages. */
export interface MessageDefaults {
  /** Where results go: the sender's reply address (Celery's `reply_to`, the app's oid). */
  replyTo: string;
  /** The queue when neither the signature nor the task's declaration names one. */
  defaultQueue: string;
  /** A task's own queue and priority, when the sender knows the task by name. */
  routeOf?(task: string): { queue?: string | undefined; priority?: number | undefined } | undefined;
  /** The task running now: messages sent from it become its children (parent_id, root_id). */
  parent?: { id: string; rootId: string | null } | undefined;
}

/**
 * Turns one task signature, its args and options already merged, into a protocol v2 message, as
 * Celery's `send_task` does: `task_id`, `root_id`, `parent_id`, `group_id`, `group_index`,
 * `chord`, `link`, `link_error`, `chain`, `countdown`, `eta`, `expires`, `time_limit`,
 * `soft_time_limit`, `shadow`, `ignore_result`, `priority`, `queue`, `reply_to`, `headers`; and,
 * as headers, `argsrepr`, `kwargsrepr`, `replaced_task_nesting` and Celery 5.3's stamps.
 */
export function messageFromSignature(sig: Signature, defaults: MessageDefaults): PreparedMessage {
  const o = sig.options;
  const name = sig.task;
  const now = Date.now();
  const eta = etaOf(name, o, now);
  const expires = dateOption(name, "expires", o.expires, now);
  const known = defaults.routeOf?.(name);
  const priority = numberOption(name, "priority", o.priority) ?? known?.priority;
  const queue =
    stringOption(name, "queue", o.queue) ?? stringOption(name, "routing_key", o.routing_key);
  const link = signatureList(o.link, `the link option of ${name}`);
  const linkError = signatureList(o.link_error, `the link_error option of ${name}`);
  const chain =
    o.chain === undefined || o.chain === null ? [] : signatureList(o.chain, `the chain of ${name}`);
  const parent = defaults.parent;
  const message = createTaskMessage({
    task: name,
    ...(typeof o.task_id === "string" && { id: o.task_id }),
    args: sig.args,
    kwargs: sig.kwargs,
    eta,
    expires,
    retries: numberOption(name, "retries", o.retries) ?? 0,
    timeLimit: [
      numberOption(name, "time_limit", o.time_limit) ?? null,
      numberOption(name, "soft_time_limit", o.soft_time_limit) ?? null,
    ],
    rootId: stringOption(name, "root_id", o.root_id) ?? parent?.rootId ?? parent?.id ?? null,
    parentId: stringOption(name, "parent_id", o.parent_id) ?? parent?.id ?? null,
    group: stringOption(name, "group_id", o.group_id) ?? null,
    groupIndex: numberOption(name, "group_index", o.group_index) ?? null,
    shadow: stringOption(name, "shadow", o.shadow) ?? null,
    ignoreResult: o.ignore_result === true,
    ...(priority !== undefined && { priority }),
    replyTo: stringOption(name, "reply_to", o.reply_to) ?? defaults.replyTo,
    headers: { ...carriedHeaders(sig), ...(isRecord(o.headers) ? o.headers : {}) },
    embed: {
      callbacks: link.length > 0 ? link : null,
      errbacks: linkError.length > 0 ? linkError : null,
      chain: chain.length > 0 ? chain : null,
      chord: isRecord(o.chord) ? (o.chord as Signature) : null,
    },
  });
  const route: PublishOptions = {
    queue: queue ?? known?.queue ?? defaults.defaultQueue,
    ...(priority !== undefined && { priority }),
    ...(eta && { availableAt: eta.getTime() }),
  };
  return { message, route };
}

/** The options Celery sends as headers as they are: reprs, replace nesting, stamps. */
function carriedHeaders(sig: Signature): Record<string, unknown> {
  const names = [...CARRIED_AS_HEADERS, ...stampNames(sig)];
  return Object.fromEntries(
    names.flatMap((name) => (sig.options[name] == null ? [] : [[name, sig.options[name]]])),
  );
}

function etaOf(name: string, o: Record<string, unknown>, now: number): Date | null {
  const countdown = numberOption(name, "countdown", o.countdown);
  if (countdown !== undefined) return new Date(now + countdown * 1000);
  return dateOption(name, "eta", o.eta, now);
}

/** Seconds from now, a Date, or an ISO-8601 string (how a Python signature carries a datetime). */
function dateOption(name: string, key: string, value: unknown, now: number): Date | null {
  if (value === undefined || value === null) return null;
  const date =
    value instanceof Date
      ? value
      : typeof value === "number"
        ? new Date(now + value * 1000)
        : typeof value === "string"
          ? parseCeleryDate(value)
          : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw badOption(name, key, value, "seconds or a date");
  return date;
}

function numberOption(name: string, key: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw badOption(name, key, value, "a number");
  }
  return value;
}

function stringOption(name: string, key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badOption(name, key, value, "a string");
  return value;
}

function badOption(name: string, key: string, value: unknown, expected: string): CeleryTsError {
  return new CeleryTsError(
    "CONFIG",
    `the signature of ${name} has option ${key}=${JSON.stringify(value)}: expected ${expected}`,
  );
}
