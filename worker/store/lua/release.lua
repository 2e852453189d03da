-- Give a lease up if `token` still holds it, freeing the job's concurrency slot (when given).
local K = named_keys('lease', 'ext_running')
local A = args()
local tok = lease_of(K.lease)
if tok == nil or tok ~= A.token then return 0 end
redis.call('DEL', K.lease)
if K.ext_running then redis.call('ZREM', K.ext_running, A.job_id) end
return 1
