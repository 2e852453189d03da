-- Recovery sweep, one job: a running job whose lease expired goes back to the queue from its
-- last checkpoint (or fails when it stopped making progress across attempts).
-- Its concurrency slot is free now, so the longest-waiting job of its extension is woken.
-- Returns {status, dispatch, woken_job_id or ''} or 0 when there is nothing to recover.
local K = named_keys('job', 'lease', 'active', 'outbox', 'queued', 'ext_running', 'ext_waiting', 'events', 'state',
  'logs_key', 'warnings_key', 'result_key', 'expiring', 'snapshot_a', 'snapshot_b', 'celery_result')
local A = args()
local job, job_id = K.job, A.job_id
if redis.call('EXISTS', K.lease) == 1 then return 0 end
if redis.call('HGET', job, 'status') ~= 'running' then
  redis.call('SREM', K.active, job_id)
  return 0
end
local now = now_ms()
local worker = redis.call('HGET', job, 'worker') or '?'
local checkpoints = hget_num(job, 'checkpoints')
local progressed = checkpoints > hget_num(job, 'ckpt_at_claim')
local stalls = 0
if not progressed then stalls = hget_num(job, 'stalls') + 1 end
redis.call('SREM', K.active, job_id)
redis.call('ZREM', K.ext_running, job_id)
redis.call('HDEL', job, 'worker')
local control = redis.call('HGET', job, 'control') or ''
local status
if control == 'cancel' then
  status = 'cancelled'
elseif stalls >= A.max_stalls then
  status = 'failed'
  redis.call('HSET', job, 'error', 'no progress across ' .. stalls ..
    ' attempts (no new checkpoint); last: worker ' .. worker .. ' lost')
elseif control == 'pause' then
  status = 'paused'
else
  status = 'queued'
end
redis.call('HSET', job, 'status', status, 'stalls', stalls, 'updated_at', now, 'control', '',
  'last_error', 'worker ' .. worker .. ' lost (lease expired)')
redis.call('HINCRBY', job, 'recoveries', 1)
local dispatch = hget_num(job, 'dispatch')
if status == 'queued' then
  dispatch = redis.call('HINCRBY', job, 'dispatch', 1)
  redis.call('HSET', job, 'queued_at', now, 'progress', redis.call('HGET', job, 'ckpt_progress') or '0',
    'message', 'worker ' .. worker .. ' lost; resuming from checkpoint ' .. checkpoints)
  redis.call('ZADD', K.outbox, now, job_id)
  redis.call('ZADD', K.queued, now, job_id)
elseif status == 'paused' then
  redis.call('HSET', job, 'paused_at', now)
else
  redis.call('HSET', job, 'finished_at', now)
  local why = (status == 'failed') and ('job ' .. job_id .. ' failed: ' .. redis.call('HGET', job, 'error'))
    or ('job ' .. job_id .. ' cancelled')
  celery_result(K.celery_result, redis.call('HGET', job, 'task_id') or job_id, status, '', why, A.result_expires_ms)
end
event(K.events, now, 'lost', {worker = worker, next = status, from_checkpoint = checkpoints})
if status == 'failed' or status == 'cancelled' then
  retire(job, {K.state, K.logs_key, K.warnings_key, K.events, K.result_key, K.snapshot_a, K.snapshot_b,
    K.celery_result},
    K.expiring, job_id, now,
    A.retain_ms, A.max_retain_ms)
end
local woken = wake_next(K.ext_waiting, K.outbox, now + A.grace_ms)
return {status, dispatch, woken}
