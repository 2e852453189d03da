-- pause / resume / cancel, from any client. A running job is told through its `control` field
-- (its worker's watcher polls it); a queued or paused one changes status right here.
-- Returns {status, dispatch, send ('1' when a message must be sent now)}
local K = named_keys('job', 'outbox', 'queued', 'events', 'ext_waiting', 'state', 'logs_key', 'warnings_key', 'result_key',
  'expiring', 'snapshot_a', 'snapshot_b', 'celery_result')
local A = args()
local job, action, job_id = K.job, A.action, A.job_id
if redis.call('EXISTS', job) == 0 then return redis.error_reply('NOT_FOUND') end
local status = redis.call('HGET', job, 'status')
local dispatch = hget_num(job, 'dispatch')
local now = now_ms()
local terminal = (status == 'completed' or status == 'failed' or status == 'cancelled')
if terminal then
  if action == 'cancel' and status == 'cancelled' then return {status, dispatch, '0'} end
  return redis.error_reply('INVALID job is ' .. status .. '; cannot ' .. action)
end
local function stop(new_status)
  redis.call('ZREM', K.outbox, job_id)
  redis.call('ZREM', K.queued, job_id)
  redis.call('ZREM', K.ext_waiting, job_id)
  redis.call('HSET', job, 'status', new_status, 'control', '', 'updated_at', now)
  event(K.events, now, new_status, {by = 'client'})
  if new_status == 'paused' then
    redis.call('HSET', job, 'paused_at', now)
  else
    redis.call('HSET', job, 'finished_at', now)
    redis.call('HDEL', job, 'paused_at')
    celery_result(K.celery_result, redis.call('HGET', job, 'task_id') or job_id, 'cancelled', '', 'job ' .. job_id .. ' cancelled', A.result_expires_ms)
    retire(job, {K.state, K.logs_key, K.warnings_key, K.events, K.result_key, K.snapshot_a, K.snapshot_b,
      K.celery_result}, K.expiring, job_id, now, A.retain_ms, A.max_retain_ms)
  end
end
if action == 'pause' then
  if status == 'queued' then stop('paused') ; return {'paused', dispatch, '0'} end
  if status == 'running' then
    redis.call('HSET', job, 'control', 'pause', 'updated_at', now)
    event(K.events, now, 'pause-requested', {})
  end
  return {status, dispatch, '0'}
elseif action == 'cancel' then
  if status == 'queued' or status == 'paused' then stop('cancelled') ; return {'cancelled', dispatch, '0'} end
  redis.call('HSET', job, 'control', 'cancel', 'updated_at', now)
  event(K.events, now, 'cancel-requested', {})
  return {status, dispatch, '0'}
elseif action == 'resume' then
  if status == 'paused' then
    dispatch = redis.call('HINCRBY', job, 'dispatch', 1)
    redis.call('HSET', job, 'status', 'queued', 'control', '', 'queued_at', now, 'updated_at', now,
      'stalls', 0)
    -- not paused any more, and not finished (a finished_at here is from a record older than paused_at)
    redis.call('HDEL', job, 'paused_at', 'finished_at')
    redis.call('ZADD', K.outbox, now + A.grace_ms, job_id)
    redis.call('ZADD', K.queued, now, job_id)
    event(K.events, now, 'resumed', {dispatch = dispatch})
    return {'queued', dispatch, '1'}
  end
  if status == 'running' and redis.call('HGET', job, 'control') == 'pause' then
    redis.call('HSET', job, 'control', '', 'updated_at', now)
    event(K.events, now, 'pause-withdrawn', {})
  end
  return {status, dispatch, '0'}
end
return redis.error_reply('INVALID unknown action ' .. action)
