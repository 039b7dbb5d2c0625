import {
  createTaskMessage,
  decodeJson,
  encodeJson,
  encodeTaskMessage,
  type AtomicPublisher,
  type CoordinationStore,
  type Logger,
  type PublishOptions,
  type Transport,
  type WireMessage,
} from "@celery-ts/core";
import { parseEntry, type BeatEntry, type ParsedEntry } from "./beat-entry.ts";
import { decodeRecord, putValue, type BeatKeys } from "./beat-schedule.ts";
import type { LeaderLease } from "./leader-lease.ts";
import { onceHeader } from "./once.ts";
import { planTick, tickTaskId, type TickRecord } from "./plan-tick.ts";

/** What a leader's pass over the schedule works with. */
export interface PassContext {
  store: CoordinationStore;
  transport: Transport;
  /**
   * The store's atomic publisher for this transport, when it has one (the broker is the store's
   * server): a tick is then published and recorded sent in one step, and never sent twice.
   */
  atomic: AtomicPublisher | undefined;
  lease: LeaderLease;
  keys: BeatKeys;
  namespace: string;
  timezone: string;
  graceMs: number;
  /** Entries from code or config, by name. */
  staticEntries: Map<string, ParsedEntry>;
  logger: Logger;
  /** Store entries that failed to parse, by their JSON: reported once each. */
  reported: Set<string>;
  /** The token under which code entries were last written for `beat list`. */
  publishedFor?: number;
}

/** The outcome of one pass as leader. */
export interface PassResult {
  /** When the next tick is due (epoch ms); undefined: no entry has one. */
  due: number | undefined;
  /** Whether it published anything. */
  sent: boolean;
}

/** What one entry's turn did. */
interface Handled {
  /** When to look at the entry again (epoch ms). */
  wake: number | undefined;
  sent: boolean;
  /** A write was refused: the record moved on since it was read (or the lease was lost). */
  refused?: boolean;
}

/** The schedule as read from the store at one moment. */
export interface Snapshot {
  entries: Map<string, ParsedEntry>;
  paused: Set<string>;
  records: Map<string, string>;
}

/** The entries (code, then the store's over them), which are paused, and their tick records. */
export async function readSchedule(ctx: PassContext): Promise<Snapshot> {
  const { keys, timezone, logger, reported } = ctx;
  const entries = new Map(ctx.staticEntries);
  const paused = new Set<string>();
  const records = new Map<string, string>();
  for (const { key, value } of await ctx.store.list(keys.base)) {
    if (key.startsWith(keys.entry)) {
      const name = key.slice(keys.entry.length);
      try {
        entries.set(name, parseEntry({ ...(decodeJson(value) as object), name }, timezone));
      } catch (error) {
        if (!reported.has(value)) {
          reported.add(value);
          logger.error("beat: ignored an entry in the store that is not valid", {
            entry: name,
            error: String((error as Error).message ?? error),
          });
        }
      }
    } else if (key.startsWith(keys.paused)) {
      paused.add(key.slice(keys.paused.length));
    } else if (key.startsWith(keys.last)) {
      records.set(key.slice(keys.last.length), value);
    }
  }
  return { entries, paused, records };
}

/** The message of a tick, and where it goes. */
function tickMessage(
  entry: BeatEntry,
  id: string,
  headers?: Record<string, unknown>,
): { message: WireMessage; options: PublishOptions } {
  const { options: send = {} } = entry;
  const message = createTaskMessage({
    task: entry.task,
    id,
    ...(headers && { headers }),
    args: entry.args ?? [],
    kwargs: entry.kwargs ?? {},
    ...(send.expires !== undefined && { expires: new Date(Date.now() + send.expires * 1000) }),
    ...(send.priority !== undefined && { priority: send.priority }),
  });
  const options = {
    queue: send.queue ?? "celery",
    ...(send.priority !== undefined && { priority: send.priority }),
  };
  return { message: encodeTaskMessage(message), options };
}

/**
 * Publishes the message of a tick (in two steps); returns the queue. It may go out twice (see
 * `sendRecorded`): its claim header lets celery-ts workers with a store run it once.
 */
async function publish(ctx: PassContext, entry: BeatEntry, record: TickRecord): Promise<string> {
  const once = onceHeader(record.id!, entry.options?.expires);
  const { message, options } = tickMessage(entry, record.id!, once);
  await ctx.transport.publish(message, options);
  return options.queue;
}

/**
 * A test hook: with `CELERY_TS_BEAT_TEST_CRASH=after-publish` in its environment, the process
 * SIGKILLs itself as soon as its first publish of a tick returns, before it records anything
 * more: the crash window between publishing a tick and recording it sent.
 */
function crashHook(): void {
  if (process.env.CELERY_TS_BEAT_TEST_CRASH !== "after-publish") return;
  process.kill(process.pid, "SIGKILL");
  // The signal is on its way: run nothing more meanwhile.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
}

function logSent(ctx: PassContext, entry: BeatEntry, record: TickRecord, queue: string): void {
  ctx.logger.info("beat: sent", {
    entry: entry.name,
    task: entry.task,
    id: record.id,
    tick: new Date(record.tick).toISOString(),
    queue,
    token: record.token,
  });
}

/**
 * Publishes a tick and records it `sent` (a fenced compare-and-set from `raw`) in one atomic step
 * of the store's atomic publisher: a leader killed at any moment leaves both or neither, so no
 * tick is sent twice. Returns the record written; undefined when refused (nothing was sent).
 */
async function sendAtomically(
  ctx: PassContext,
  entry: BeatEntry,
  raw: string | undefined,
  tick: { tick: number; id: string; task: string },
): Promise<string | undefined> {
  const token = ctx.lease.token;
  if (token === undefined || !ctx.atomic) return undefined;
  const next: TickRecord = { ...tick, state: "sent", token, at: Date.now() };
  const value = encodeJson(next);
  const { message, options } = tickMessage(entry, tick.id);
  const fence = { key: ctx.keys.fence, token };
  const key = `${ctx.keys.last}${entry.name}`;
  if (!(await ctx.atomic.publishIfSet(message, options, { key, expected: raw, value, fence }))) {
    return undefined;
  }
  crashHook();
  logSent(ctx, entry, next, options.queue);
  return value;
}

/** Records `next` in place of `raw`, fenced by our token; undefined when we may not (any more). */
async function record(
  ctx: PassContext,
  name: string,
  raw: string | undefined,
  next: TickRecord,
): Promise<string | undefined> {
  const token = ctx.lease.token;
  if (token === undefined) return undefined;
  const encoded = encodeJson({ ...next, token });
  const fence = { key: ctx.keys.fence, token };
  return (await ctx.store.compareAndSet(`${ctx.keys.last}${name}`, raw, encoded, { fence }))
    ? encoded
    : undefined;
}

/**
 * Publishes a `sending` record's message, then marks it sent (unless someone moved it on), then
 * logs it. Returns whether it published.
 */
async function sendRecorded(ctx: PassContext, entry: BeatEntry, raw: string): Promise<boolean> {
  const sending = decodeRecord(raw)!;
  // Paused between recording and here past the lease: leave it to the next leader, which
  // publishes it (once) with the same id.
  if (ctx.lease.token === undefined) return false;
  const queue = await publish(ctx, entry, sending);
  crashHook();
  // At once: killed between the publish and this, the next leader publishes it again.
  const sent = encodeJson({ ...sending, state: "sent", at: Date.now() });
  await ctx.store.compareAndSet(`${ctx.keys.last}${entry.name}`, raw, sent);
  logSent(ctx, entry, sending, queue);
  return true;
}

/** Handles one entry: sends, resends or skips what is due. */
async function handle(
  ctx: PassContext,
  parsed: ParsedEntry,
  raw: string | undefined,
  paused: boolean,
): Promise<Handled> {
  const { entry } = parsed;
  const now = Date.now();
  const current = decodeRecord(raw);
  const plan = planTick(parsed, current, now, ctx.graceMs, paused);
  if (plan.kind === "wait") return { wake: plan.until, sent: false };
  const base = { at: now, task: entry.task, token: 0 };
  let written: string | undefined;
  let sent = false;
  if (plan.kind === "resend" && ctx.atomic) {
    // Left `sending` by a leader that published in two steps (an older version): same task id.
    const { tick, id, task } = current!;
    written = await sendAtomically(ctx, entry, raw, { tick, id: id!, task });
    sent = written !== undefined;
  } else if (plan.kind === "resend") {
    // Sent by a leader that died (or failed to publish) before marking it sent: same task id.
    written = await record(ctx, entry.name, raw, { ...current!, ...base, task: current!.task });
    if (written) sent = await sendRecorded(ctx, entry, written);
  } else if (plan.kind === "skip") {
    const skipped = { ...base, tick: plan.tick, state: "skipped" as const, id: null };
    written = await record(ctx, entry.name, raw, skipped);
    if (written) {
      ctx.logger.info("beat: skipped", {
        entry: entry.name,
        tick: new Date(plan.tick).toISOString(),
      });
    }
  } else if (ctx.atomic) {
    const id = tickTaskId(ctx.namespace, entry.name, plan.tick);
    written = await sendAtomically(ctx, entry, raw, { tick: plan.tick, id, task: entry.task });
    sent = written !== undefined;
  } else {
    const id = tickTaskId(ctx.namespace, entry.name, plan.tick);
    // Recorded before it is published: a leader that lost the lease cannot get this far.
    const sending = { ...base, tick: plan.tick, state: "sending" as const, id };
    written = await record(ctx, entry.name, raw, sending);
    if (written) sent = await sendRecorded(ctx, entry, written);
  }
  // After a write, look again at once (more ticks may be due); after a refused one, next time.
  return { wake: written ? now : undefined, sent, refused: !written };
}

/** Writes the code entries for `beat list`, once per term. */
async function publishCodeEntries(ctx: PassContext, token: number): Promise<void> {
  if (ctx.publishedFor === token) return;
  for (const [name, parsed] of ctx.staticEntries) {
    await putValue(ctx.store, `${ctx.keys.code}${name}`, encodeJson(parsed.entry));
  }
  ctx.publishedFor = token;
}

/**
 * One pass as leader over every entry: sends what is due, and tells when the next tick is. A new
 * leader passes the schedule it read while taking the lease; if that turns out to be out of date
 * (a write refused), the pass is made again at once from a fresh read.
 */
export async function leadPass(
  ctx: PassContext,
  token: number,
  read?: Snapshot,
): Promise<PassResult> {
  const { entries, paused, records } = read ?? (await readSchedule(ctx));
  let due: number | undefined;
  let sent = false;
  let refused = false;
  for (const [name, parsed] of entries) {
    if (ctx.lease.token === undefined) break;
    try {
      const handled = await handle(ctx, parsed, records.get(name), paused.has(name));
      if (handled.wake !== undefined && (due === undefined || handled.wake < due)) {
        due = handled.wake;
      }
      sent ||= handled.sent;
      refused ||= handled.refused === true;
    } catch (error) {
      ctx.logger.warn("beat: could not send a tick; trying again", {
        entry: name,
        error: String((error as Error)?.message ?? error),
      });
    }
  }
  if (read && refused && ctx.lease.token !== undefined) {
    const again = await leadPass(ctx, token);
    return { due: again.due, sent: sent || again.sent };
  }
  // After the ticks: a new leader sends what is due first.
  if (ctx.lease.token !== undefined) await publishCodeEntries(ctx, token);
  return { due, sent };
}
