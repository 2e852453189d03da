-- Extend a lease if `token` still holds it; also refresh the job's concurrency slot.
-- KEYS: lease, [ext_running]    ARGV: token, ttl_ms, job_id
local tok = lease_of(KEYS[1])
if tok == nil or tok ~= tonumber(ARGV[1]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[2] then redis.call('ZADD', KEYS[2], 'XX', now_ms() + tonumber(ARGV[2]), ARGV[3]) end
return 1
