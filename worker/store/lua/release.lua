-- Give a lease up if `token` still holds it, freeing the job's concurrency slot.
-- KEYS: lease, [ext_running]    ARGV: token, job_id
local tok = lease_of(KEYS[1])
if tok == nil or tok ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
if KEYS[2] then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
