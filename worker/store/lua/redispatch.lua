-- The sweep found this job's message taken by a worker and never claimed (its taker died or
-- lost the broker): queue the job again under a new dispatch number, so the parked message is
-- stale wherever it surfaces. Only a job still queued at that very dispatch is touched.
-- Returns the new dispatch, or 0 when the job moved on (claimed, paused, redispatched already).
local K = named_keys('job', 'outbox', 'events')
local A = args()
local job = K.job
if redis.call('HGET', job, 'status') ~= 'queued' then return 0 end
if hget_num(job, 'dispatch') ~= A.dispatch then return 0 end
local now = now_ms()
local dispatch = redis.call('HINCRBY', job, 'dispatch', 1)
redis.call('HSET', job, 'updated_at', now,
  'message', 'dispatch ' .. A.dispatch .. ' was taken by a worker that never started it; sent again')
redis.call('ZADD', K.outbox, now + A.grace_ms, A.job_id)
event(K.events, now, 'redispatched', {from_dispatch = A.dispatch, dispatch = dispatch})
return dispatch
