import { storeTtlMs, type CompareAndSetOptions } from "@celery-ts/core";
import { checkFenceToken } from "@celery-ts/core/driver";
import { PKG } from "./errors.ts";
import { lua } from "./scripts.ts";

/** The COMPARE_AND_SET script's arguments, checked. */
export function compareAndSetArgs(
  expected: string | undefined,
  value: string,
  cas: CompareAndSetOptions,
): (string | number)[] {
  const ttlMs = storeTtlMs(cas, PKG) ?? 0;
  checkFenceToken(cas, PKG);
  const fence = cas.fence;
  return [
    expected === undefined ? "0" : "1",
    expected ?? "",
    value,
    ttlMs,
    fence ? String(fence.token) : "",
  ];
}

/**
 * Lua: compare-and-set, optionally fenced, of `key`; `fence`: the fence counter (may be any key
 * when not fenced). ARGV: "1" when a value is expected ("0": only when absent), the expected value,
 * the new value, the expiry in milliseconds ("0": none), the fence token ("": no fence). A counter
 * that does not exist holds 0. `check` says whether it would set; `set` sets.
 */
const COMPARE_AND_SET_FUNCTIONS = `
local function cas_allowed(key, fence, argv)
  if argv[5] ~= '' then
    local current = redis.call('GET', fence)
    if (current or '0') ~= argv[5] then return false end
  end
  local value = redis.call('GET', key)
  if argv[1] == '1' then return value == argv[2] end
  return not value
end
local function cas_set(key, argv)
  if argv[4] ~= '0' then
    redis.call('SET', key, argv[3], 'PX', argv[4])
  else
    redis.call('SET', key, argv[3])
  end
end
`;

/** KEYS: the key, the fence counter. ARGV: see above. Returns 1 when set, else 0. */
export const COMPARE_AND_SET = lua(`${COMPARE_AND_SET_FUNCTIONS}
if not cas_allowed(KEYS[1], KEYS[2], ARGV) then return 0 end
cas_set(KEYS[1], ARGV)
return 1
`);

/**
 * The compare-and-set above and a publish (kombu's binding and LPUSH, as the transport's
 * `publish()`), in one script: both or neither. KEYS: the key, the fence counter, the queue's
 * list, kombu's binding set. ARGV: the compare-and-set's five, the message, the binding member.
 * The writes that can fail (on a key of another type) come before the record's SET.
 * Returns 1 when published and set, else 0.
 */
export const PUBLISH_IF_SET = lua(`${COMPARE_AND_SET_FUNCTIONS}
if not cas_allowed(KEYS[1], KEYS[2], ARGV) then return 0 end
redis.call('SADD', KEYS[4], ARGV[7])
redis.call('LPUSH', KEYS[3], ARGV[6])
cas_set(KEYS[1], ARGV)
return 1
`);

/** KEYS: the key. ARGV: the expected value. Returns 1 when deleted, else 0. */
export const DELETE_IF_EQUALS = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`);

/**
 * KEYS: the counter. ARGV: the increment, the expiry in milliseconds ("0": none), set only when
 * the counter has none (it was just created): a fixed window. Returns the new value.
 */
export const INCREMENT = lua(`
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '0' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
`);
