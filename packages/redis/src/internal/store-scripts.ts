import { lua } from "./scripts.ts";

/**
 * Compare-and-set, optionally fenced. KEYS: the key, the fence counter (may be any key when not
 * fenced). ARGV: "1" when a value is expected ("0": only when absent), the expected value, the
 * new value, the expiry in milliseconds ("0": none), the fence token ("": no fence).
 * A counter that does not exist holds 0. Returns 1 when set, else 0.
 */
export const COMPARE_AND_SET = lua(`
if ARGV[5] ~= '' then
  local current = redis.call('GET', KEYS[2])
  if (current or '0') ~= ARGV[5] then return 0 end
end
local value = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if value ~= ARGV[2] then return 0 end
elseif value then
  return 0
end
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
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
