import { encodeJson } from "@celery-ts/core";
import {
  notKeptReason,
  taskIdOf,
  type DeadLetterLimits,
  type DriverPrimitives,
} from "@celery-ts/core/driver";
import type { Redis } from "ioredis";
import type { KeyLayout } from "./keys.ts";
import { resultWriteFor } from "./prepared-store.ts";
import { ACK, DEAD_LETTER, HAND_BACK, RESTORE, runScript } from "./scripts.ts";
import { markRedelivered, parseEnvelope, priorityOf } from "./stored-message.ts";
import type { Held } from "./take-source.ts";

/** Checks a MULTI's results: the first failed command's error is thrown. */
export async function execChecked(
  results: [error: Error | null, result: unknown][] | null,
): Promise<unknown[]> {
  if (!results) throw new Error("Connection is closed (transaction aborted)");
  return results.map(([error, result]) => {
    if (error) throw error;
    return result;
  });
}

export interface RedisPrimitivesOptions {
  keys: KeyLayout;
  /** Undefined: dead letters are off, a rejected message is forgotten. */
  deadLetters: DeadLetterLimits | undefined;
  /** This consumer's `held` set (liveness): a settled tag leaves it. */
  held: string;
  /** A command on the main connection, bounded and mapped. */
  command<T>(work: (client: Redis) => Promise<T>): Promise<T>;
  /** The transport's server and database (`serverOf`): results prepared for it are carried. */
  server: string;
}

/** The broker writes on a taken message, in kombu's layout; `open` is the transport's. */
export function redisWrites(options: RedisPrimitivesOptions): Omit<DriverPrimitives<Held>, "open"> {
  const { keys, command } = options;
  /** Where a message given back goes (its queue's list for its priority), marked redelivered. */
  const redelivery = (held: Held): { list: string; raw: string } => {
    const envelope = parseEnvelope(held.raw);
    return {
      list: keys.list(held.queue, priorityOf(envelope)),
      raw: markRedelivered(held.raw, envelope),
    };
  };
  /** Back to the front of its queue, marked redelivered, and no longer unacked nor held. */
  const restore = (client: Redis, held: Held) => {
    const { list, raw } = redelivery(held);
    return runScript(
      client,
      RESTORE,
      [keys.unacked, keys.unackedIndex, list, options.held],
      [held.tag, "", raw, "front", "held"],
    );
  };
  return {
    async ack({ tag }, result) {
      const ackKeys = [keys.unacked, keys.unackedIndex, options.held];
      const write = resultWriteFor(result, options.server);
      await command((client) =>
        write
          ? runScript(client, ACK, [...ackKeys, write.key], [tag, write.value, write.ttlMs])
          : runScript(client, ACK, ackKeys, [tag]),
      );
    },
    carries: (result) => resultWriteFor(result, options.server) !== undefined,
    async requeue(held) {
      await command((client) => restore(client, held));
    },
    async deadLetter(held, reason) {
      const limits = options.deadLetters;
      const now = Date.now();
      const letter = limits ? deadLetterEntry(held, reason, limits, now) : "";
      const { queue, tag } = held;
      await command((client) =>
        runScript(
          client,
          DEAD_LETTER,
          [keys.unacked, keys.unackedIndex, keys.dead(queue), keys.deadBytes(queue), options.held],
          [tag, letter, ...deadLetterBounds(limits, now)],
        ),
      );
    },
    async extendLeases(handles) {
      const now = Date.now() / 1000;
      for (let i = 0; i < handles.length; i += 500) {
        const args = handles.slice(i, i + 500).flatMap(({ tag }) => [now, tag]);
        // XX: only entries still there; an ack or a restore meanwhile is not undone.
        await command((client) => client.zadd(keys.unackedIndex, "XX", ...args));
      }
    },
    async handBack(handles) {
      // In one script: a consumer taking meanwhile never gets a later one before an earlier one.
      const lists: string[] = [];
      const args: string[] = [];
      for (const held of handles) {
        const { list, raw } = redelivery(held);
        lists.push(list);
        args.push(held.tag, raw);
      }
      const fixed = [keys.unacked, keys.unackedIndex, options.held];
      await command((client) => runScript(client, HAND_BACK, [...fixed, ...lists], args));
    },
  };
}

/** The dead letters' bounds as script arguments: maxCount (0: off), maxBytes, minAt (epoch ms). */
export function deadLetterBounds(
  limits: DeadLetterLimits | undefined,
  now: number,
): [number, number, number] {
  return limits ? [limits.maxCount, limits.maxBytes, now - limits.maxAge * 1000] : [0, 0, 0];
}

/**
 * A dead letter as stored: JSON starting with `{"rejected_at":<ms>` (the scripts read the age
 * there), without the message when it alone is over the byte bound.
 */
function deadLetterEntry(
  held: Held,
  reason: string,
  limits: DeadLetterLimits,
  now: number,
): string {
  const bytes = Buffer.byteLength(held.raw);
  const kept = bytes <= limits.maxBytes;
  return encodeJson({
    rejected_at: now,
    queue: held.queue,
    reason: kept ? reason : notKeptReason(reason, bytes, limits.maxBytes),
    task_id: taskIdOf(held.raw) ?? "",
    raw: kept ? held.raw : "",
  });
}
