import {
  CeleryTsError,
  decodeJson,
  encodeJson,
  type ChordCounter,
  type ChordPart,
  type GroupStore,
  type ResultTuple,
} from "@celery-ts/core";
import type { ChainableCommander, Redis } from "ioredis";
import { toMs } from "@celery-ts/core/driver";
import { PKG } from "./errors.ts";

/** Celery's key prefix for groups (`BaseKeyValueStoreBackend.group_keyprefix`). */
export const GROUP_KEY_PREFIX = "celery-taskset-meta-";

export interface RedisChordOptions {
  /** Runs a command on the backend's connection (waiting out a short outage). */
  run<T>(work: (client: Redis) => Promise<T>): Promise<T>;
  /** The global key prefix (kombu's `global_keyprefix`), before Celery's own. */
  keyPrefix: string;
  /** Celery's `result_expires`, in seconds; 0 for never. */
  expires: number;
}

/**
 * Chords counted exactly as Celery 5.2's Redis backend counts them, so Python and TypeScript
 * workers can finish parts of the same chord: each part is added to the sorted set
 * `celery-taskset-meta-<group>.j` (member `[1, task_id, state, result]` in JSON, scored by its
 * `group_index`), and the part that brings the set's size to `.s` (the chord size the sender
 * wrote) plus `.t` (members added later by `replace()`) sends the body.
 */
export function redisChords(options: RedisChordOptions): {
  chords: ChordCounter;
  groups: GroupStore;
} {
  const { run, keyPrefix, expires } = options;
  const groupKey = (groupId: string, suffix = ""): string =>
    `${keyPrefix}${GROUP_KEY_PREFIX}${groupId}${suffix}`;
  const expirySeconds = Math.ceil(expires);

  /** Celery's `_set`: SETEX (or SET) and PUBLISH on the key, in one transaction. */
  const set = (key: string, value: string): Promise<void> =>
    run(async (client) => {
      const transaction = client.multi();
      if (expires > 0) transaction.set(key, value, "PX", Math.ceil(toMs(expires)));
      else transaction.set(key, value);
      transaction.publish(key, value);
      await exec(transaction);
    });

  return {
    chords: {
      setSize: (groupId, size) => set(groupKey(groupId, ".s"), String(size)),
      async partReturn(groupId, part) {
        const [jkey, tkey, skey] = [".j", ".t", ".s"].map((s) => groupKey(groupId, s)) as [
          string,
          string,
          string,
        ];
        const member = encodeJson([1, part.taskId, part.status, part.result]);
        const replies = await run(async (client) => {
          const transaction = client
            .multi()
            .zadd(jkey, part.groupIndex ?? "+inf", member)
            .zcount(jkey, "-inf", "+inf")
            .get(tkey)
            .get(skey);
          if (expirySeconds > 0) {
            transaction
              .expire(jkey, expirySeconds)
              .expire(tkey, expirySeconds)
              .expire(skey, expirySeconds);
          }
          return exec(transaction);
        });
        const ready = Number(replies[1]);
        const diff = Number(replies[2] ?? 0);
        const size = replies[3];
        // No size yet: Celery's workers wait too (the sender writes it before the last part).
        if (size === null || size === undefined) return { complete: false };
        if (ready !== Number(size) + diff) return { complete: false };
        const members = await run((client) => client.zrange(jkey, 0, "-1"));
        return { complete: true, parts: members.map((text, i) => decodePart(jkey, text, i)) };
      },
      async clear(groupId) {
        await run((client) =>
          client.del(groupKey(groupId, ".j"), groupKey(groupId, ".t"), groupKey(groupId, ".s")),
        );
      },
    },
    groups: {
      saveGroup: (groupId, tuple) => set(groupKey(groupId), encodeJson({ result: tuple })),
      async getGroup(groupId) {
        const key = groupKey(groupId);
        const text = await run((client) => client.get(key));
        if (text === null) return undefined;
        const saved = parse(key, text) as { result?: ResultTuple } | null;
        return saved?.result ?? undefined;
      },
      async forgetGroup(groupId) {
        await run((client) => client.del(groupKey(groupId)));
      },
    },
  };
}

async function exec(transaction: ChainableCommander): Promise<unknown[]> {
  const results = await transaction.exec();
  if (!results) throw new Error("Connection is closed (transaction aborted)");
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

function decodePart(key: string, text: string, index: number): ChordPart {
  const value = parse(key, text);
  if (!Array.isArray(value) || value.length !== 4 || typeof value[1] !== "string") {
    throw new CeleryTsError(
      "MALFORMED_MESSAGE",
      `a member of ${key} is not [1, id, state, result]`,
      {
        pkg: PKG,
      },
    );
  }
  return { taskId: value[1], status: String(value[2]), result: value[3], groupIndex: index };
}

function parse(key: string, text: string): unknown {
  try {
    return decodeJson(text);
  } catch (error) {
    throw new CeleryTsError("MALFORMED_MESSAGE", `${key} does not hold JSON`, {
      pkg: PKG,
      cause: error,
    });
  }
}
