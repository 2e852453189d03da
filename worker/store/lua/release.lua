-- Give a lease up if the run (`token` and `owner`) still holds it, freeing the job's concurrency
-- slot (when given).
local K = named_keys('lease', 'ext_running')
local A = args()
if redis.call('GET', K.lease) ~= A.token .. '|' .. A.owner then return 0 end
redis.call('DEL', K.lease)
if K.ext_running then redis.call('ZREM', K.ext_running, A.job_id) end
return 1
