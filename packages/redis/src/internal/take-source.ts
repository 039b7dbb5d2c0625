import { randomUUID } from "node:crypto";
import { encodeJson } from "@celery-ts/core";
import {
  notKeptReason,
  type AckToWrite,
  oversizeReason,
  type DeadLetterLimits,
  type MessageSource,
  type TakeBatch,
  type TakenMessage,
} from "@celery-ts/core/driver";
import type { KeyLayout } from "./keys.ts";
import { resultWriteFor } from "./prepared-store.ts";
import type { Link } from "./link.ts";
import { deadLetterBounds } from "./redis-primitives.ts";
import { runScript, TAKE } from "./scripts.ts";
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
 * parses it again only when it can say so (`redelivered` appears in it: searched without its
 * quotes, as a pattern that starts with '"' is several times slower to find).
 */
function redelivered(raw: string): boolean {
  return raw.includes("redelivered") && isRedelivered(parseEnvelope(raw));
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
  /** The transport's server and database (`serverOf`): results prepared for it are carried. */
  server: string;
  /** Milliseconds an ack-and-take waits for the connection before it fails (retryable). */
  offlineTimeoutMs: number;
  /** A message over this many bytes is dead-lettered by the take script, unread. */
  maxMessageBytes: number;
  deadLetters: DeadLetterLimits | undefined;
  /** Told the reason of each message the take script refused for its size. */
  onRefused(reason: string): void;
}

/**
 * The take script's last arguments (after the consumer's), pushed on `args`: the size limit,
 * what a refusal does; the reasons made once, the times of each take filled in from `now`.
 */
function refusalArgs(options: TakeSourceOptions): (args: (string | number)[], now: number) => void {
  const limit = options.maxMessageBytes;
  const reason = oversizeReason(-1, limit);
  const notKept = notKeptReason(reason, -1, options.deadLetters?.maxBytes ?? 0);
  return (args, now) => {
    args.push(limit, reason, notKept, now, ...deadLetterBounds(options.deadLetters, now));
  };
}

/**
 * The take script's acks (see TAKE): their count and each one's tag, result and expiry pushed on
 * `args`; returns the keys with the result keys after them.
 */
function withAcks(
  acks: readonly AckToWrite<Held>[],
  server: string,
  keys: readonly string[],
  args: (string | number)[],
): string[] {
  const withResults = [...keys];
  args.push(acks.length);
  for (const { handle, result } of acks) {
    const write = resultWriteFor(result, server);
    if (write) withResults.push(write.key);
    args.push(handle.tag, write?.value ?? "", write?.ttlMs ?? 0);
  }
  return withResults;
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

  const refusal = refusalArgs(options);

  /** One take of up to `room` (0: none), first acknowledging `acks` (and storing their results). */
  const takeBatch = async (
    room: number,
    acks: readonly AckToWrite<Held>[] = [],
  ): Promise<TakeBatch<Held>> => {
    const first = tagNumber;
    tagNumber += room;
    const now = Date.now();
    const args: (string | number)[] = [now / 1000, room, queues.length, keys.steps.length];
    for (const q of cycle) args.push(q);
    for (const json of queueJson) args.push(json);
    args.push(tagBase, first, consumer.id, consumer.leaseMs);
    refusal(args, now);
    const keysOfTake =
      acks.length > 0 ? withAcks(acks, options.server, scriptKeys, args) : scriptKeys;
    const flat = (await runScript(take.client, TAKE, keysOfTake, args)) as (number | string)[];
    const messages: TakenMessage<Held>[] = [];
    for (let i = 1; i + 1 < flat.length; i += 2) {
      const index = Number(flat[i]);
      if (index < 0) {
        options.onRefused(String(flat[i + 1]));
        continue;
      }
      if (cycle[cycle.length - 1] !== index) cycle = [...cycle.filter((q) => q !== index), index];
      const raw = String(flat[i + 1]);
      const tag = tagBase + (first + (i - 1) / 2).toString(16).padStart(12, "0");
      const queue = queues[index - 1] ?? "";
      const handle: Held = { tag, queue, raw };
      messages.push({ handle, deliveryTag: tag, queue, raw, redelivered: redelivered(raw) });
    }
    // Messages still waiting (taken by a rival meanwhile): look again soon.
    if (flat[0] === 1) return { messages, lookAgainIn: 0 };
    // A wake-up that comes while this take is under way (an invalidation for a push after the
    // script read the lengths, or tracking just turned on) is kept by the kit's consume loop: it looks again at once.
    const poll = wake.tracking ? options.pollInterval : options.fallbackPollInterval;
    return { messages, lookAgainIn: poll };
  };

  /** Waits for the take connection (not past the consumer's stop), then takes; errors mapped. */
  const takeWhenReady = async (
    signal: AbortSignal,
    work: () => Promise<TakeBatch<Held>>,
  ): Promise<TakeBatch<Held>> => {
    try {
      await take.waitReady(Number.POSITIVE_INFINITY, signal);
    } catch (error) {
      if (signal.aborted) return { messages: [] };
      throw take.map(error);
    }
    try {
      return await work();
    } catch (error) {
      throw take.map(error);
    }
  };

  return {
    take: ({ max, signal }) => takeWhenReady(signal, () => takeBatch(max)),
    // An ack waits for its connection a bounded time, as on the main connection, whether or not
    // the consumer stopped meanwhile.
    ackAndTake: (acks, { max }) => take.run(options.offlineTimeoutMs, () => takeBatch(max, acks)),
    subscribe: (listener) => wake.subscribe(listener),
    close: options.onClose,
  };
}
