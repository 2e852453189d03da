-- The sweep takes outbox entries that are due and pushes each one's deadline out by the grace
-- period, so only one sender handles it unless that sender dies too.
-- KEYS: outbox    ARGV: grace_ms, max_entries
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id) end
return due
