-- CheckpointStore.acquire: take a job's lease with a token larger than any before.
local K = named_keys('job', 'lease')
local A = args()
local tok, owner = lease_of(K.lease)
if tok ~= nil and owner ~= A.owner then
  return redis.error_reply('LEASE_HELD ' .. owner)
end
local token = redis.call('HINCRBY', K.job, 'fence', 1)
redis.call('SET', K.lease, token .. '|' .. A.owner, 'PX', A.ttl_ms)
return token
