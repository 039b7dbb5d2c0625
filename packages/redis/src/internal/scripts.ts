import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function lua(source: string): LuaScript {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

/** EVALSHA, falling back to EVAL (which caches the script) after a restart emptied the cache. */
export async function runScript(
  client: Redis,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return client.eval(script.source, keys.length, ...keys, ...args);
  }
}

/**
 * Takes up to n messages and records each as unacknowledged, in one atomic step: kombu pops with
 * BRPOP and records with a second command, so a consumer that dies between the two loses the
 * message; here either both happen or neither.
 *
 * Lists are read as kombu's BRPOP reads them: every queue's step-0 list first, then every queue's
 * next step, and so on; among queues, round robin (a queue served moves to the end, as kombu's
 * `round_robin_cycle` rotates it). Each message taken is recorded as kombu records it:
 * `unacked[tag] = [envelope, exchange, routing_key]` and `unacked_index[tag] = time taken`. The
 * envelope is embedded as it is when it is JSON (kombu stores the parsed object), and as a JSON
 * string when it is not, so that the entry stays readable by a Python worker's restore.
 *
 * KEYS: unacked, unacked_index, then the lists, step-major: KEYS[2 + (s-1)*Q + q].
 * ARGV: now (seconds), n, Q, S, the queue order (Q indices, 1-based), the queue names as JSON
 * strings (Q), then n delivery tags.
 * Returns a flat array: queue index, envelope, for each message taken.
 */
export const TAKE = lua(`
local now, n, Q, S = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local order = {}
for i = 1, Q do order[i] = tonumber(ARGV[4 + i]) end
local out = {}
for i = 1, n do
  local found = false
  for s = 1, S do
    for oi = 1, Q do
      local q = order[oi]
      local raw = redis.call('RPOP', KEYS[2 + (s - 1) * Q + q])
      if raw then
        local tag = ARGV[4 + 2 * Q + i]
        local embedded = raw
        if not pcall(cjson.decode, raw) then embedded = cjson.encode(raw) end
        redis.call('HSET', KEYS[1], tag, '[' .. embedded .. ', "", ' .. ARGV[4 + Q + q] .. ']')
        redis.call('ZADD', KEYS[2], now, tag)
        out[#out + 1] = q
        out[#out + 1] = raw
        table.remove(order, oi)
        order[Q] = q
        found = true
        break
      end
    end
    if found then break end
  end
  if not found then break end
end
return out
`);

/**
 * Puts an unacknowledged message back on its queue, atomically and only if it is still recorded
 * (compare-and-set on the unacked entry when one is given): a message acknowledged, requeued or
 * restored meanwhile is left alone. An index entry without a hash entry is removed, as kombu does.
 *
 * KEYS: unacked, unacked_index, destination lists. ARGV: tag, expected entry ("" for any), the
 * envelope to push, "front" (RPUSH: next to be taken) or "back" (LPUSH: behind the others).
 * Returns 1 when the message went back, 0 when there was nothing to do.
 */
export const RESTORE = lua(`
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if ARGV[2] ~= '' and current ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  if ARGV[4] == 'front' then
    redis.call('RPUSH', KEYS[i], ARGV[3])
  else
    redis.call('LPUSH', KEYS[i], ARGV[3])
  end
end
return 1
`);

/**
 * Moves an unacknowledged message to its queue's dead letters, if it is still recorded.
 * KEYS: unacked, unacked_index, dead list. ARGV: tag, dead letter entry, limit (0: none).
 */
export const DEAD_LETTER = lua(`
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[2])
local limit = tonumber(ARGV[3])
if limit > 0 then redis.call('LTRIM', KEYS[3], -limit, -1) end
return 1
`);

/** Deletes the lock only if it is still ours (redis-py's Lock release). KEYS: lock. ARGV: token. */
export const RELEASE_LOCK = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);
