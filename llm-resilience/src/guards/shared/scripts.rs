//! The Lua scripts of the exchange: each one atomic round trip, on Redis's
//! own clock (`TIME`, in milliseconds), renewing the TTL of what it writes.

/// Redis's time in milliseconds, as the first lines of every script.
const NOW: &str = "local t = redis.call('TIME')\n\
                   local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// A breaker opened for `ARGV[1]` ms: keep the later of that and the
/// opening already known, and publish `ARGV[4]` on `ARGV[3]`.
/// KEYS[1]: the breaker's hash. ARGV[2]: the TTL in ms.
const BREAKER_OPEN: &str = "
local until_ms = now + tonumber(ARGV[1])
local known = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if until_ms > known then redis.call('HSET', KEYS[1], 'open_until', until_ms) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

/// A breaker closed by a probe that succeeded: forget the opening, publish.
const BREAKER_CLOSE: &str = "
redis.call('HSET', KEYS[1], 'open_until', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return now
";

/// How long the fleet's breaker is still open, in ms (0: not open).
const BREAKER_READ: &str = "
local known = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if known > now then return known - now end
return 0
";

/// A budget's sync: store this process's counts (ARGV[1] member, ARGV[2]
/// calls, ARGV[3] retries), drop the fields of processes not heard from for
/// ARGV[4] ms, and return the fleet's calls, retries, live processes and
/// this one's rank among them. ARGV[5]: the TTL in ms.
const BUDGET_SYNC: &str = "
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. now)
local all = redis.call('HGETALL', KEYS[1])
local calls, retries, n, rank = 0, 0, 0, 0
for i = 1, #all, 2 do
  local c, r, at = string.match(all[i + 1], '^(%d+) (%d+) (%d+)$')
  if at == nil or now - tonumber(at) > tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    calls = calls + tonumber(c)
    retries = retries + tonumber(r)
    n = n + 1
    if all[i] < ARGV[1] then rank = rank + 1 end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {calls, retries, n, rank}
";

/// A limiter's heartbeat: this process (ARGV[1]) is live and calling
/// (ARGV[6] '1'), or idle ('0': it leaves the set); processes not heard
/// from for ARGV[2] ms are not live. The rate it paces the fleet at, if
/// any (ARGV[4], '' if none, and ARGV[5] '1' if it grows fast), becomes the
/// one a process that starts later takes. Returns the live processes that
/// call, and the rate ('' if none) and growth stored. KEYS[1]: the members'
/// sorted set; KEYS[2]: the limiter's hash. ARGV[3]: the TTL in ms. A
/// process that joins or leaves the set says so on ARGV[7] (`joined ID`,
/// `left ID`), for the others to count again at once.
const LIMITER_SYNC: &str = "
if ARGV[6] == '1' then
  if redis.call('ZADD', KEYS[1], now, ARGV[1]) == 1 then
    redis.call('PUBLISH', ARGV[7], 'joined ' .. ARGV[1])
  end
elseif redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[7], 'left ' .. ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local h = redis.call('HMGET', KEYS[2], 'rate', 'fast')
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'rate', ARGV[4], 'fast', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return {n, h[1] or '', h[2] or '0'}
";

/// A process leaves: its member entry (ARGV[1]) goes from KEYS[1], a sorted
/// set or a hash; if it was there and ARGV[2] names a channel, `left ID` is
/// published on it.
const LEAVE: &str = "
local gone
if redis.call('TYPE', KEYS[1]).ok == 'zset' then
  gone = redis.call('ZREM', KEYS[1], ARGV[1])
else
  gone = redis.call('HDEL', KEYS[1], ARGV[1])
end
if gone == 1 and ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], 'left ' .. ARGV[1])
end
return gone
";

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{NOW}{body}"))
}

pub(super) fn breaker_open() -> redis::Script {
    script(BREAKER_OPEN)
}

pub(super) fn breaker_close() -> redis::Script {
    script(BREAKER_CLOSE)
}

pub(super) fn breaker_read() -> redis::Script {
    script(BREAKER_READ)
}

pub(super) fn budget_sync() -> redis::Script {
    script(BUDGET_SYNC)
}

pub(super) fn limiter_sync() -> redis::Script {
    script(LIMITER_SYNC)
}

pub(super) fn leave() -> redis::Script {
    script(LEAVE)
}
