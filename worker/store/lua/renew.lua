-- Extend a lease if the run (`token` and `owner`) still holds it; also refresh the job's
-- concurrency slot (when given).
local K = named_keys('lease', 'ext_running')
local A = args()
if redis.call('GET', K.lease) ~= A.token .. '|' .. A.owner then return 0 end
redis.call('PEXPIRE', K.lease, A.ttl_ms)
if K.ext_running then redis.call('ZADD', K.ext_running, 'XX', now_ms() + A.ttl_ms, A.job_id) end
return 1
