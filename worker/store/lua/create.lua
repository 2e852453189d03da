-- Create a job record unless it exists; optionally put its first message in the outbox.
-- A.fields: the record's own field, value pairs, stored as given.
local K = named_keys('job', 'jobs', 'outbox', 'queued', 'events')
local A = args()
if redis.call('EXISTS', K.job) == 1 then return 0 end
local now = now_ms()
redis.call('HSET', K.job, 'id', A.job_id, 'status', 'queued', 'dispatch', A.dispatch,
  'created_at', now, 'queued_at', now, 'updated_at', now, 'attempts', 0, 'checkpoints', 0,
  'stalls', 0, 'progress', 0, 'message', '', 'items', 0, 'bytes', 0, unpack(A.fields))
redis.call('ZADD', K.jobs, now, A.job_id)
redis.call('ZADD', K.queued, now, A.job_id)
if A.enqueue then redis.call('ZADD', K.outbox, now + A.grace_ms, A.job_id) end
event(K.events, now, 'submitted', {dispatch = A.dispatch})
return 1
