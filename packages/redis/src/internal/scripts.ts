import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

export function lua(source: string): LuaScript {
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
 * Lua: keeps a dead letter at the tail of `dead`, counting its bytes in `bytesKey`, then drops
 * the oldest while the list is over `maxCount` entries or `maxBytes`, or its head is older than
 * `minAt` (epoch ms). A letter starts with `{"rejected_at":<ms>`, so its age is read in place.
 */
const KEEP_DEAD_LETTER = `
local function keep(dead, bytesKey, letter, maxCount, maxBytes, minAt)
  redis.call('RPUSH', dead, letter)
  redis.call('INCRBY', bytesKey, #letter)
  while true do
    local n = redis.call('LLEN', dead)
    if n == 0 then
      redis.call('DEL', bytesKey)
      return
    end
    local head = redis.call('LINDEX', dead, 0)
    local at = tonumber(string.match(head, '^{"rejected_at": ?(%d+)') or '0')
    local bytes = tonumber(redis.call('GET', bytesKey) or '0')
    if n > maxCount or bytes > maxBytes or at < minAt then
      redis.call('LPOP', dead)
      redis.call('DECRBY', bytesKey, #head)
    else
      return
    end
  end
end
`;

/** Lua: stores a result as Celery's Redis backend does (see STORE_RESULT). */
const STORE = `
local function store(key, value, ttl)
  if ttl == '0' then
    redis.call('SET', key, value)
  else
    redis.call('SET', key, value, 'PX', ttl)
  end
  return redis.call('PUBLISH', key, value)
end
`;

/** Lua: acknowledges a tag as kombu does, and takes it out of the consumer's `held` set. */
const FORGET_TAG = `
local function forget(unacked, index, held, tag)
  redis.call('SREM', held, tag)
  redis.call('ZREM', index, tag)
  return redis.call('HDEL', unacked, tag)
end
`;

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
 * Ours beside kombu's layout: each tag taken is added to the consumer's `held` set, the consumer
 * to the `consumers` set, and its `alive` key is renewed, so that when it dies any celery-ts
 * consumer can restore what it held as soon as that key runs out (see liveness.ts).
 *
 * A message over the size limit is never returned: it goes to its queue's dead letters (or is
 * dropped when they are off), with the reason and its task id, so the consumer never holds it.
 *
 * KEYS: unacked, unacked_index, held, consumers, alive, then the lists, step-major:
 * KEYS[5 + (s-1)*Q + q], then each queue's dead letters (Q) and their byte counters (Q).
 * ARGV: now (seconds), n, Q, S, the queue order (Q indices, 1-based), the queue names as JSON
 * strings (Q), then a tag base (the first 24 characters of a UUID) and a first number: the i-th
 * message taken gets the delivery tag base .. (first + i - 1) in 12 hex digits, a UUID as kombu's
 * tags are, and no tag is made for a slot that finds nothing; then the consumer's id and its
 * liveness lease (ms); then the size limit, the reason of a refusal and the reason when the
 * message is not kept either (each with -1 for its size), now (ms), and the dead letters'
 * maxCount (0: off), maxBytes and minAt.
 * First, as one write with the take, the acknowledgements: ARGV after minAt, how many (A), then
 * for each its tag, the result to store with it as STORE_RESULT does ("" for none) and that
 * result's expiry in ms; the result keys (only for the acks that store one, in order) are the
 * last of KEYS, after the dead letters' counters. Acknowledged as ACK does. With n = 0 it stops
 * there (returns {0}).
 * Then it reads the length of every list it takes from, which arms the caller's client tracking.
 * Returns a flat array: 1 when a list is still not empty (else 0), then queue index, envelope,
 * for each message taken; -(queue index), the
 * reason, for each message refused (a refused message uses up its slot's tag number and is not
 * held).
 */
export const TAKE = lua(`${KEEP_DEAD_LETTER}${STORE}${FORGET_TAG}
local now, n, Q, S = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local order = {}
for i = 1, Q do order[i] = tonumber(ARGV[4 + i]) end
local x = 8 + 2 * Q
local limit, refusal, notKept = tonumber(ARGV[x + 1]), ARGV[x + 2], ARGV[x + 3]
local nowMs, maxCount = ARGV[x + 4], tonumber(ARGV[x + 5])
local maxBytes, minAt = tonumber(ARGV[x + 6]), tonumber(ARGV[x + 7])
local function refuse(q, raw)
  local size = tostring(#raw)
  local reason = string.gsub(refusal, '%-1 bytes', size .. ' bytes', 1)
  local id = nil
  local at = string.find(raw, '"headers"', 1, true)
  if at then id = string.match(string.sub(raw, at, at + 65536), '"id"%s*:%s*"([^"]+)"') end
  if maxCount > 0 then
    local kept = raw
    if #raw > maxBytes then
      kept = ''
      reason = string.gsub(notKept, '%-1 bytes', size .. ' bytes', 1)
    end
    local letter = '{"rejected_at":' .. nowMs .. ',"queue":' .. ARGV[4 + Q + q] ..
      ',"reason":' .. cjson.encode(reason) .. ',"task_id":' .. cjson.encode(id or '') ..
      ',"raw":' .. cjson.encode(kept) .. '}'
    keep(KEYS[5 + S * Q + q], KEYS[5 + S * Q + Q + q], letter, maxCount, maxBytes, minAt)
  end
  return reason .. (id and (' (task ' .. id .. ')') or '')
end
local resultKey = 5 + S * Q + 2 * Q
for a = 1, tonumber(ARGV[x + 8] or '0') do
  local at = x + 6 + 3 * a
  if ARGV[at + 1] ~= '' then
    resultKey = resultKey + 1
    store(KEYS[resultKey], ARGV[at + 1], ARGV[at + 2])
  end
  forget(KEYS[1], KEYS[2], KEYS[3], ARGV[at])
end
local out = {0}
if n == 0 then return out end
local base, first = ARGV[5 + 2 * Q], tonumber(ARGV[6 + 2 * Q])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[8 + 2 * Q])
redis.call('SADD', KEYS[4], ARGV[7 + 2 * Q])
for i = 1, n do
  local found = false
  for s = 1, S do
    for oi = 1, Q do
      local q = order[oi]
      local raw = redis.call('RPOP', KEYS[5 + (s - 1) * Q + q])
      if raw and #raw > limit then
        out[#out + 1] = -q
        out[#out + 1] = refuse(q, raw)
        found = true
        break
      elseif raw then
        local tag = base .. string.format('%012x', first + i - 1)
        local embedded = raw
        if not pcall(cjson.decode, raw) then embedded = cjson.encode(raw) end
        redis.call('HSET', KEYS[1], tag, '[' .. embedded .. ', "", ' .. ARGV[4 + Q + q] .. ']')
        redis.call('ZADD', KEYS[2], now, tag)
        redis.call('SADD', KEYS[3], tag)
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
-- Reading the lengths arms client tracking (a push after this wakes the consumer: Redis tracks
-- the keys a script reads for its caller); a list still not empty says to look again soon.
for k = 6, 5 + S * Q do
  if redis.call('LLEN', KEYS[k]) > 0 then out[1] = 1 end
end
return out
`);

/**
 * Acknowledges a message as kombu does (`_remove_from_index`): its unacked entry and its index
 * entry are removed, and the tag leaves the consumer's `held` set (liveness), in one command
 * rather than a MULTI; optionally storing a task's result first, as STORE_RESULT does, when the
 * result backend is on the same server (one write for both).
 * KEYS: unacked, unacked_index, held, and optionally the result key.
 * ARGV: tag, and with a result key the meta as JSON and the expiry in ms (0: none).
 */
export const ACK = lua(`${STORE}${FORGET_TAG}
if KEYS[4] then store(KEYS[4], ARGV[2], ARGV[3]) end
return forget(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
`);

/**
 * Stores a result as Celery's Redis backend does (SET with its expiry, then PUBLISH on the key's
 * channel), in one command that carries the value once.
 * KEYS: the result key. ARGV: the meta as JSON, the expiry in ms (0: none).
 */
export const STORE_RESULT = lua(`${STORE}
return store(KEYS[1], ARGV[1], ARGV[2])
`);

/**
 * Lua: puts the unacknowledged message `tag` back on `lists`, only if it is still recorded (and,
 * when `expected` is not '', recorded as `expected`); an index entry without a hash entry is
 * removed, as kombu does. `front`: RPUSH (next to be taken), else LPUSH (behind the others).
 * Returns 1 when the message went back, 0 when there was nothing to do.
 */
const PUT_BACK = `
local function putBack(unacked, index, lists, tag, expected, envelope, front)
  local current = redis.call('HGET', unacked, tag)
  if not current then
    redis.call('ZREM', index, tag)
    return 0
  end
  if expected ~= '' and current ~= expected then return 0 end
  redis.call('HDEL', unacked, tag)
  redis.call('ZREM', index, tag)
  for _, list in ipairs(lists) do
    if front then
      redis.call('RPUSH', list, envelope)
    else
      redis.call('LPUSH', list, envelope)
    end
  end
  return 1
end
`;

/**
 * Puts an unacknowledged message back on its queue, atomically and only if it is still recorded
 * (compare-and-set on the unacked entry when one is given): a message acknowledged, requeued or
 * restored meanwhile is left alone. An index entry without a hash entry is removed, as kombu does.
 *
 * KEYS: unacked, unacked_index, destination lists, then the consumer's `held` set when ARGV[5] is
 * "held" (the tag leaves it whatever else happens). ARGV: tag, expected entry ("" for any), the
 * envelope to push, "front" (RPUSH: next to be taken) or "back" (LPUSH: behind the others), and
 * optionally "held".
 * Returns 1 when the message went back, 0 when there was nothing to do.
 */
export const RESTORE = lua(`${PUT_BACK}
local last = #KEYS
if ARGV[5] == 'held' then
  redis.call('SREM', KEYS[last], ARGV[1])
  last = last - 1
end
local lists = {}
for i = 3, last do lists[#lists + 1] = KEYS[i] end
return putBack(KEYS[1], KEYS[2], lists, ARGV[1], ARGV[2], ARGV[3], ARGV[4] == 'front')
`);

/**
 * Hands taken messages back to the front of their queues in one atomic step, as RESTORE "front"
 * "held" does each: no consumer can take a later one before an earlier one is back, so they are
 * taken again in the order they were first taken.
 *
 * KEYS: unacked, unacked_index, the consumer's `held` set, then each message's list, in the order
 * taken. ARGV: each message's tag and envelope (marked redelivered), in the same order.
 * Returns how many went back.
 */
export const HAND_BACK = lua(`${PUT_BACK}
local restored = 0
-- The last first: each goes to the front, so the first taken ends up next to be taken.
for i = #KEYS - 3, 1, -1 do
  redis.call('SREM', KEYS[3], ARGV[2 * i - 1])
  restored = restored + putBack(KEYS[1], KEYS[2], {KEYS[3 + i]}, ARGV[2 * i - 1], '', ARGV[2 * i], true)
end
return restored
`);

/**
 * Moves an unacknowledged message to its queue's dead letters, if it is still recorded, then
 * drops the oldest beyond the bounds; with maxCount 0 (dead letters off) it only forgets it.
 * The tag leaves the consumer's `held` set (liveness).
 * KEYS: unacked, unacked_index, dead list, its byte counter, held.
 * ARGV: tag, dead letter entry, maxCount, maxBytes, minAt (epoch ms).
 */
export const DEAD_LETTER = lua(`${KEEP_DEAD_LETTER}
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local maxCount = tonumber(ARGV[3])
if maxCount > 0 then keep(KEYS[3], KEYS[4], ARGV[2], maxCount, tonumber(ARGV[4]), tonumber(ARGV[5])) end
return 1
`);

/**
 * Takes one dead letter out of the list (compare-and-delete on its exact entry) and, for a
 * replay, pushes its message back on its queue's list. KEYS: dead list, its byte counter, then
 * the queue's list for a replay. ARGV: the entry, the message to push (replay only).
 * Returns 1 when the entry was there.
 */
export const TAKE_DEAD_LETTER = lua(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if redis.call('DECRBY', KEYS[2], #ARGV[1]) <= 0 then redis.call('DEL', KEYS[2]) end
if KEYS[3] then redis.call('LPUSH', KEYS[3], ARGV[2]) end
return 1
`);

/** Deletes the lock only if it is still ours (redis-py's Lock release). KEYS: lock. ARGV: token. */
export const RELEASE_LOCK = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Forgets a consumer found dead, only if it is still dead (its `alive` key absent): a consumer
 * that came back meanwhile keeps its records. KEYS: alive, held, consumers. ARGV: id.
 */
export const FORGET_CONSUMER = lua(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`);
