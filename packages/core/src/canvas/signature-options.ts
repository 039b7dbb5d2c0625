import { CeleryTsError } from "../errors.ts";
import type { Signature } from "../task-message.ts";
import { asSignature, isRecord, signatureList } from "./signature.ts";

/**
 * The options of a signature that celery-ts honours when it sends the task (see
 * `messageFromSignature`), and those Celery sets on the signatures of a canvas it builds.
 */
const HONOURED = new Set([
  "task_id",
  "root_id",
  "parent_id",
  "group_id",
  "group_index",
  "chord",
  "link",
  "link_error",
  "chain",
  "countdown",
  "eta",
  "expires",
  "time_limit",
  "soft_time_limit",
  "shadow",
  "ignore_result",
  "priority",
  "queue",
  "routing_key",
  "reply_to",
  "headers",
  "retries",
]);

/**
 * Options that go into the message's headers as they are, as Celery sends them: the reprs, the
 * nesting count of `Task.replace()`, and the stamps of Celery 5.3's stamping (`stamped_headers`
 * names the options that are stamps).
 */
export const CARRIED_AS_HEADERS = new Set([
  "argsrepr",
  "kwargsrepr",
  "replaced_task_nesting",
  "stamped_headers",
  "stamps",
]);

/**
 * Options that steer only how a producer publishes or tracks the call, with nothing for a worker
 * to do: kombu's publish retries and delivery flags, Celery's bookkeeping.
 */
const PRODUCER_ONLY = new Set([
  "add_to_parent",
  "retry",
  "retry_policy",
  "use_link",
  "immutable",
  "delivery_mode",
  "mandatory",
  "declare",
  "exchange_type",
  "chord_size",
]);

/** Options honoured only with one value: celery-ts sends uncompressed JSON. */
const ONLY: Record<string, (value: unknown, sig: Signature) => boolean> = {
  serializer: (value) => value === "json",
  content_type: (value) => value === "application/json",
  content_encoding: (value) => value === "utf-8",
  compression: (value) => value === null,
  // A direct exchange named after the queue (kombu's default) routes as the queue alone does.
  exchange: (value, sig) =>
    value === "" || (typeof value === "string" && value === (sig.options.queue ?? value)),
};

/** The stamp options a signature declares in `stamped_headers`, carried as headers too. */
export function stampNames(sig: Signature): string[] {
  const names = sig.options.stamped_headers;
  return Array.isArray(names) ? names.filter((n): n is string => typeof n === "string") : [];
}

/** Why one signature's own options cannot be honoured, or undefined. */
function unhonouredOption(sig: Signature): string | undefined {
  const stamps = new Set(stampNames(sig));
  for (const [key, value] of Object.entries(sig.options)) {
    if (value === undefined || value === null) continue;
    if (HONOURED.has(key) || CARRIED_AS_HEADERS.has(key) || PRODUCER_ONLY.has(key)) continue;
    if (stamps.has(key)) continue;
    const only = ONLY[key];
    if (only?.(value, sig)) continue;
    const why = only
      ? "celery-ts sends uncompressed JSON and routes by queue"
      : "celery-ts does not know what it asks for";
    return (
      `the signature of ${sig.task} has the option ${key}=${JSON.stringify(value)}, which ` +
      `celery-ts cannot honour (${why}): remove it, or run this task on a Python worker`
    );
  }
  return undefined;
}

/** The signatures nested in a signature: its callbacks, chain, chord body, group members. */
function nested(sig: Signature): Signature[] {
  const { options, kwargs } = sig;
  const where = `the signature of ${sig.task}`;
  const out = [
    ...signatureList(options.link, `${where} (link)`),
    ...signatureList(options.link_error, `${where} (link_error)`),
    ...signatureList(options.chain, `${where} (chain)`),
    ...(isRecord(options.chord) ? [asSignature(options.chord, `${where} (chord)`)] : []),
  ];
  if (Array.isArray(kwargs.tasks)) out.push(...signatureList(kwargs.tasks, `${where} (tasks)`));
  if (Array.isArray(kwargs.header)) out.push(...signatureList(kwargs.header, `${where} (header)`));
  if (isRecord(kwargs.header)) out.push(asSignature(kwargs.header, `${where} (header)`));
  if (isRecord(kwargs.body)) out.push(asSignature(kwargs.body, `${where} (body)`));
  return out;
}

/**
 * Why a canvas (a signature and every signature inside it) cannot be honoured by celery-ts, or
 * undefined: an option it would otherwise drop silently. A worker refuses such a message before
 * running it; a client refuses to send it.
 */
export function unhonourableSignature(sig: Signature): string | undefined {
  const pending = [sig];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const reason = unhonouredOption(next);
    if (reason !== undefined) return reason;
    pending.push(...nested(next));
  }
  return undefined;
}

/** Throws a `CONFIG` error naming the option when the canvas cannot be honoured. */
export function checkSignature(sig: Signature): void {
  const reason = unhonourableSignature(sig);
  if (reason !== undefined) throw new CeleryTsError("CONFIG", reason);
}
