-- The sweep takes outbox entries that are due and pushes each one's deadline out by the grace
-- period, so only one sender handles it unless that sender dies too.
local K = named_keys('outbox')
local A = args()
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', K.outbox, '-inf', now, 'LIMIT', 0, A.max_entries)
for _, id in ipairs(due) do redis.call('ZADD', K.outbox, now + A.grace_ms, id) end
return due
