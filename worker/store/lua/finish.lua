-- The end of one run, fenced by the lease: the job's next status, usage, and what to send next.
-- A completed job is completed exactly once: only the lease holder of a running job gets here.
-- A.kind: 'completed' | 'failed' | 'interrupted' | 'retry'; A.detail says why a run was interrupted.
-- Returns {status, dispatch, woken_job_id or ''}
local K = named_keys('job', 'lease', 'active', 'outbox', 'ext_running', 'ext_waiting', 'events', 'usage',
  'usage_index', 'state', 'logs_key', 'warnings_key', 'result_key', 'expiring')
local A = args()
local job, token, kind, job_id = K.job, A.token, A.kind, A.job_id
if not holds(job, K.lease, token) then return lease_lost(token) end
if redis.call('HGET', job, 'status') ~= 'running' then return lease_lost(token) end
local now = now_ms()
local worker = redis.call('HGET', job, 'worker') or ''
local fuel, wall, cpu = A.fuel, A.wall_seconds, A.cpu_seconds
redis.call('HINCRBY', job, 'fuel', fuel)
redis.call('HINCRBYFLOAT', job, 'wall_seconds', wall)
redis.call('HINCRBYFLOAT', job, 'cpu_seconds', cpu)
if A.peak_memory > hget_num(job, 'peak_memory') then redis.call('HSET', job, 'peak_memory', A.peak_memory) end
redis.call('SADD', K.usage_index, A.usage_member)
redis.call('HINCRBY', K.usage, 'runs', 1)
redis.call('HINCRBY', K.usage, 'fuel', fuel)
redis.call('HINCRBYFLOAT', K.usage, 'wall_seconds', wall)
redis.call('HINCRBYFLOAT', K.usage, 'cpu_seconds', cpu)

local control = redis.call('HGET', job, 'control') or ''
local progressed = hget_num(job, 'checkpoints') > hget_num(job, 'ckpt_at_claim')
local status, err = nil, A.error
local delay = 0
if kind == 'completed' then
  status = 'completed'
elseif kind == 'failed' then
  status = 'failed'
elseif control == 'cancel' then
  status = 'cancelled'
elseif control == 'pause' then
  status = 'paused'
else
  -- interrupted at the end of a slice, or to be retried: continue unless it stopped progressing
  local stalls = 0
  if not progressed then stalls = hget_num(job, 'stalls') + 1 end
  redis.call('HSET', job, 'stalls', stalls)
  if stalls >= A.max_stalls then
    status = 'failed'
    err = 'no progress across ' .. stalls .. ' attempts (no new checkpoint); last: ' .. A.detail
  else
    status = 'queued'
    if kind == 'retry' then delay = A.delay_ms end
  end
end
if progressed and status ~= 'queued' then redis.call('HSET', job, 'stalls', 0) end

redis.call('DEL', K.lease)
redis.call('SREM', K.active, job_id)
redis.call('ZREM', K.ext_running, job_id)
redis.call('HSET', job, 'status', status, 'updated_at', now, 'control', '')
redis.call('HDEL', job, 'worker')
local dispatch = hget_num(job, 'dispatch')
if status == 'queued' then
  dispatch = redis.call('HINCRBY', job, 'dispatch', 1)
  redis.call('HSET', job, 'queued_at', now, 'last_interrupt', A.detail)
  if kind == 'retry' then redis.call('HSET', job, 'last_error', err) end
  if delay > 0 then
    redis.call('ZADD', K.outbox, now + delay, job_id)
  else
    redis.call('ZADD', K.outbox, now + A.grace_ms, job_id)
  end
  event(K.events, now, kind == 'retry' and 'retrying' or 'continued',
    {worker = worker, dispatch = dispatch, delay_ms = delay, why = A.detail})
else
  redis.call('HSET', job, 'finished_at', now)
  if status == 'completed' and #A.result > A.inline_result_bytes then
    -- a large result lives beside the record, so reading or listing records stays cheap
    redis.call('SET', K.result_key, A.result)
    redis.call('HSET', job, 'result_bytes', #A.result, 'progress', 1)
    redis.call('HDEL', job, 'error', 'result')
  elseif status == 'completed' then
    redis.call('HSET', job, 'result', A.result, 'progress', 1)
    redis.call('HDEL', job, 'error')
  elseif status == 'failed' then
    redis.call('HSET', job, 'error', err)
  end
  redis.call('HINCRBY', K.usage, status, 1)
  event(K.events, now, status, {worker = worker, error = (status == 'failed') and err or nil})
  retire(job, {K.state, K.logs_key, K.warnings_key, K.events, K.result_key}, K.expiring, job_id, now,
    A.retain_ms, A.max_retain_ms)
end
-- a slot of this extension is free now: wake the longest-waiting job
local woken = ''
local popped = redis.call('ZPOPMIN', K.ext_waiting)
if popped[1] then
  woken = popped[1]
  redis.call('ZADD', K.outbox, now + A.grace_ms, woken)
end
return {status, dispatch, woken}
