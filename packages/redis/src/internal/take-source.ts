import { randomUUID } from "node:crypto";
import { encodeJson } from "@celery-ts/core";
import {
  notKeptReason,
  oversizeReason,
  type DeadLetterLimits,
  type MessageSource,
  type TakeBatch,
  type TakenMessage,
} from "@celery-ts/core/driver";
import type { KeyLayout } from "./keys.ts";
import type { Link } from "./link.ts";
import { deadLetterBounds } from "./redis-primitives.ts";
import { isNoScript, TAKE } from "./scripts.ts";
import { isRedelivered, parseEnvelope } from "./stored-message.ts";
import type { WakeUp } from "./wake-up.ts";

/** A message this connection took: what its ack, requeue and dead-letter need. */
export interface Held {
  tag: string;
  queue: string;
  raw: string;
}

/**
 * Whether the message was put back after a delivery. The kit parses every envelope once; this
 * parses it again only when it can say so (`"redelivered"` appears in it).
 */
function redelivered(raw: string): boolean {
  return raw.includes('"redelivered"') && isRedelivered(parseEnvelope(raw));
}

export interface TakeSourceOptions {
  queues: readonly string[];
  keys: KeyLayout;
  take: Link;
  wake: WakeUp;
  /** Seconds between looks when Redis notifies us of pushes (a safety net). */
  pollInterval: number;
  /** Seconds between looks when it cannot (no client tracking). */
  fallbackPollInterval: number;
  /** Called when the consumer stops. */
  onClose(): void;
  /** The transport's consumer id and liveness lease (ms), recorded with every take. */
  consumer: { id: string; leaseMs: number };
  /** A message over this many bytes is dead-lettered by the take script, unread. */
  maxMessageBytes: number;
  deadLetters: DeadLetterLimits | undefined;
  /** Told the reason of each message the take script refused for its size. */
  onRefused(reason: string): void;
}

/** The take script's last arguments (after the consumer's): the size limit, what a refusal does. */
function refusalArgs(options: TakeSourceOptions): (string | number)[] {
  const limit = options.maxMessageBytes;
  const reason = oversizeReason(-1, limit);
  const maxBytes = options.deadLetters?.maxBytes ?? 0;
  const now = Date.now();
  return [
    limit,
    reason,
    notKeptReason(reason, -1, maxBytes),
    now,
    ...deadLetterBounds(options.deadLetters, now),
  ];
}

/** Runs the TAKE script (loading it on a new server), arming client tracking with LLEN. */
async function runTake(
  take: Link,
  scriptKeys: string[],
  args: (string | number)[],
  lists: readonly string[],
): Promise<{ flat: (number | string)[]; waiting: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const pipeline = take.client.pipeline();
    pipeline.evalsha(TAKE.sha, scriptKeys.length, ...scriptKeys, ...args);
    // Reading the lengths arms client tracking: a push after this wakes us.
    for (const list of lists) pipeline.llen(list);
    const results = await pipeline.exec();
    if (!results) throw new Error("Connection is closed");
    const [first, ...lengths] = results;
    if (first?.[0] && isNoScript(first[0]) && attempt === 1) {
      // A new or restarted server: load the script once, then go on with EVALSHA.
      await take.client.script("LOAD", TAKE.source);
      continue;
    }
    if (first?.[0]) throw first[0];
    const waiting = lengths.some(([error, length]) => !error && Number(length) > 0);
    return { flat: (first?.[1] ?? []) as (number | string)[], waiting };
  }
}

/**
 * One consumer's source: takes from its queues' lists (every priority step, round-robin over
 * the queues as kombu does) and records the messages as unacked, atomically, in one script.
 */
export function createTakeSource(options: TakeSourceOptions): MessageSource<Held> {
  const { queues, keys, take, wake, consumer } = options;
  const lists = keys.steps.flatMap((step) => queues.map((queue) => keys.list(queue, step)));
  const queueJson = queues.map((queue) => encodeJson(queue));
  const deadKeys = [...queues.map((q) => keys.dead(q)), ...queues.map((q) => keys.deadBytes(q))];
  /** The round-robin order of the queues (1-based indices), as the script rotates it. */
  let cycle = queues.map((_queue, i) => i + 1);
  // Delivery tags are UUIDs, as kombu's: this source's random first 24 characters and a number
  // in the last 12 hex digits, made (by the script) only for what is taken.
  const tagBase = randomUUID().slice(0, 24);
  let tagNumber = 0;
  const scriptKeys = [
    keys.unacked,
    keys.unackedIndex,
    keys.held(consumer.id),
    keys.consumers,
    keys.alive(consumer.id),
    ...lists,
    ...deadKeys,
  ];

  const takeBatch = async (room: number): Promise<TakeBatch<Held>> => {
    const first = tagNumber;
    tagNumber += room;
    const args = [Date.now() / 1000, room, queues.length, keys.steps.length, ...cycle];
    const { flat, waiting } = await runTake(
      take,
      scriptKeys,
      [
        ...args,
        ...queueJson,
        tagBase,
        first,
        consumer.id,
        consumer.leaseMs,
        ...refusalArgs(options),
      ],
      lists,
    );
    const messages: TakenMessage<Held>[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const index = Number(flat[i]);
      if (index < 0) {
        options.onRefused(String(flat[i + 1]));
        continue;
      }
      if (cycle[cycle.length - 1] !== index) cycle = [...cycle.filter((q) => q !== index), index];
      const raw = String(flat[i + 1]);
      const tag = tagBase + (first + i / 2).toString(16).padStart(12, "0");
      const queue = queues[index - 1] ?? "";
      const handle: Held = { tag, queue, raw };
      messages.push({ handle, deliveryTag: tag, queue, raw, redelivered: redelivered(raw) });
    }
    // Messages still waiting (taken by a rival meanwhile): look again soon.
    if (waiting) return { messages, lookAgainIn: 0 };
    // A wake-up that comes while this take is under way (an invalidation for a push after our
    // LLEN, or tracking just turned on) is kept by the kit's consume loop: it looks again at once.
    const poll = wake.tracking ? options.pollInterval : options.fallbackPollInterval;
    return { messages, lookAgainIn: poll };
  };

  return {
    async take({ max, signal }) {
      try {
        await take.waitReady(Number.POSITIVE_INFINITY, signal);
      } catch (error) {
        if (signal.aborted) return { messages: [] };
        throw take.map(error);
      }
      try {
        return await takeBatch(max);
      } catch (error) {
        throw take.map(error);
      }
    },
    subscribe: (listener) => wake.subscribe(listener),
    close: options.onClose,
  };
}
