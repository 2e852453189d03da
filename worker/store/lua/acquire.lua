-- CheckpointStore.acquire: take a job's lease with a token larger than any before.
-- KEYS: job, lease    ARGV: owner, ttl_ms
local tok, owner = lease_of(KEYS[2])
if tok ~= nil and owner ~= ARGV[1] then
  return redis.error_reply('LEASE_HELD ' .. owner)
end
local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('SET', KEYS[2], token .. '|' .. ARGV[1], 'PX', ARGV[2])
return token
