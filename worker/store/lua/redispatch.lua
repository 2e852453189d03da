-- The sweep found this job's message taken by a worker and never claimed (its taker died or
-- lost the broker), or gone from the broker altogether: queue the job again under a new dispatch
-- number, so the old message is stale wherever it surfaces. Only a job still queued at that very
-- dispatch is touched; its place in the queued index starts again from now.
-- Returns the new dispatch, or 0 when the job moved on (claimed, paused, redispatched already)
-- or its outbox entry will send it.
local K = named_keys('job', 'outbox', 'queued', 'events')
local A = args()
local job = K.job
if redis.call('HGET', job, 'status') ~= 'queued' then return 0 end
if hget_num(job, 'dispatch') ~= A.dispatch then return 0 end
-- an outbox entry sends it anyway (a waiter for a slot, a delayed retry): nothing is lost
if redis.call('ZSCORE', K.outbox, A.job_id) then return 0 end
local now = now_ms()
local dispatch = redis.call('HINCRBY', job, 'dispatch', 1)
redis.call('HSET', job, 'updated_at', now, 'message', 'dispatch ' .. A.dispatch .. ' ' .. A.why .. '; sent again')
redis.call('ZADD', K.outbox, now + A.grace_ms, A.job_id)
redis.call('ZADD', K.queued, now, A.job_id)
event(K.events, now, 'redispatched', {from_dispatch = A.dispatch, dispatch = dispatch, why = A.why})
return dispatch
