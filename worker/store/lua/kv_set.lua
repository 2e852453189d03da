-- Set one key of a (tenant, extension) key-value scope within its quota, atomically.
-- The scope's byte and key counts live beside it (usage: bytes, keys); a write that would take
-- either past its maximum is refused, so one tenant cannot fill the Redis every tenant shares.
-- Returns 1, or a QUOTA error naming the limit.
local K = named_keys('kv', 'usage')
local A = args()
local existed = redis.call('HEXISTS', K.kv, A.key) == 1
local old = 0
if existed then old = #A.key + redis.call('HSTRLEN', K.kv, A.key) end
local new = #A.key + #A.value
local bytes = hget_num(K.usage, 'bytes') - old + new
local count = hget_num(K.usage, 'keys')
if not existed then count = count + 1 end
if bytes < 0 then bytes = new end
if count > A.max_keys then
  return redis.error_reply('QUOTA key-value quota of ' .. A.max_keys .. ' keys reached')
end
if new > old and bytes > A.max_bytes then
  return redis.error_reply('QUOTA key-value quota of ' .. A.max_bytes .. ' bytes reached')
end
redis.call('HSET', K.kv, A.key, A.value)
redis.call('HSET', K.usage, 'bytes', bytes, 'keys', count)
return 1
