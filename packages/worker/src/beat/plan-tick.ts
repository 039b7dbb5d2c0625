import { createHash } from "node:crypto";
import type { ParsedEntry } from "./beat-entry.ts";

/** What the store keeps per entry: the last tick handled, and how far its sending got. */
export interface TickRecord {
  /** The tick (epoch ms): a scheduled time, or the time a catch-up jumped to. */
  tick: number;
  /**
   * `sending`: recorded, maybe published; whoever leads next publishes it again (same task id).
   * `sent`: published. `skipped`: passed over by a catch-up policy or a pause.
   */
  state: "sending" | "sent" | "skipped";
  /** The task id of the message, or null when skipped. */
  id: string | null;
  /** The fencing token of the leader that wrote it. */
  token: number;
  /** When it was written (epoch ms), for `beat list`. */
  at: number;
  task: string;
}

export type TickPlan =
  /** Nothing due; look again at `until` (epoch ms; undefined: the entry has no more ticks). */
  | { kind: "wait"; until: number | undefined }
  /** Send the message for `tick`. */
  | { kind: "send"; tick: number }
  /** Record `tick` as skipped, sending nothing. */
  | { kind: "skip"; tick: number }
  /** The record is `sending`: publish it (again), then mark it sent. */
  | { kind: "resend" };

/** A delay in [0, jitter) that every instance computes alike for one tick. */
export function jitterMs(name: string, tick: number, jitterSeconds: number | undefined): number {
  if (!jitterSeconds) return 0;
  const hash = createHash("sha1").update(`${name}\n${tick}`).digest();
  return Math.floor((hash.readUInt32BE(0) / 2 ** 32) * jitterSeconds * 1000);
}

/** The task id of one tick: the same on every instance, so a message sent again keeps its id. */
export function tickTaskId(namespace: string, name: string, tick: number): string {
  const hex = createHash("sha1")
    .update(`celery-ts beat\n${namespace}\n${name}\n${tick}`)
    .digest("hex");
  // Laid out as a version-5 (name-based, SHA-1) UUID.
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * What the leader does with one entry now. Ticks late by at most `graceMs` are on time and sent
 * one by one (a failover loses none); when the next tick is later than that, the entry's catch-up
 * policy turns all of the missed ones into one message or none. A paused entry skips what falls
 * due. An entry seen for the first time first gets a record of where its schedule starts.
 */
export function planTick(
  parsed: ParsedEntry,
  record: TickRecord | undefined,
  now: number,
  graceMs: number,
  paused: boolean,
): TickPlan {
  if (record?.state === "sending") return { kind: "resend" };
  const { entry } = parsed;
  if (!record && entry.at === undefined) {
    // First sight: record where the schedule starts. An interval's latest tick comes next (sent at
    // once, as Celery does on start); a crontab's next tick is its first.
    return { kind: "skip", tick: entry.every !== undefined ? parsed.latest(now) - 1 : now };
  }
  const last = record?.tick ?? Number.NEGATIVE_INFINITY;
  const due = parsed.next(last);
  if (due === undefined) return { kind: "wait", until: undefined };
  if (paused)
    return due <= now ? { kind: "skip", tick: parsed.latest(now) } : { kind: "wait", until: due };
  const sendAt = due + jitterMs(entry.name, due, entry.jitter);
  if (sendAt > now) return { kind: "wait", until: sendAt };
  if (due >= now - graceMs) return { kind: "send", tick: due };
  const latest = parsed.latest(now);
  return (entry.catchUp ?? "once") === "once"
    ? { kind: "send", tick: latest }
    : { kind: "skip", tick: latest };
}
