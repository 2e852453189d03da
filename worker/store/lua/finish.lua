-- The end of one run, fenced by the lease: the job's next status, usage, and what to send next.
-- A completed job is completed exactly once: only the lease holder of a running job gets here.
-- A.kind: 'completed' | 'failed' | 'interrupted' | 'retry'; A.detail says why a run was interrupted.
-- Every redis.call costs a few microseconds, so the record is read with one HMGET and written
-- with one HSET (and one HDEL).
-- A job that ended also gets Celery's result for its submitter's task id (see celery_result).
-- Returns {status, dispatch, woken_job_id or '', error of a failed job or ''}
local K = named_keys('job', 'lease', 'active', 'outbox', 'queued', 'ext_running', 'ext_waiting', 'events', 'usage',
  'usage_index', 'state', 'logs_key', 'warnings_key', 'result_key', 'expiring', 'snapshot_a', 'snapshot_b', 'celery_result')
local A = args()
local job, token, kind, job_id = K.job, A.token, A.kind, A.job_id
if not holds(job, K.lease, token, A.owner) then return lease_lost(token) end
local f = redis.call('HMGET', job, 'status', 'worker', 'peak_memory', 'control', 'checkpoints', 'ckpt_at_claim',
  'stalls', 'dispatch', 'wall_seconds', 'cpu_seconds', 'retain_ms', 'task_id')
if f[1] ~= 'running' then return lease_lost(token) end
local now = now_ms()
local worker = f[2] or ''
local fuel, wall, cpu = A.fuel, A.wall_seconds, A.cpu_seconds
-- Bounded at the edge already; here too, because a HINCRBY that fails would stop this finish:
-- Lua writes numbers from 1e14 up in exponent form, which HINCRBY refuses.
if type(fuel) ~= 'number' or fuel ~= fuel or fuel < 0 then fuel = 0 end
if fuel >= 1e14 then fuel = 99999999999999 end
local fields = {'updated_at', now, 'control', '',
  'wall_seconds', string.format('%.17g', num(f[9]) + tonumber(wall)),
  'cpu_seconds', string.format('%.17g', num(f[10]) + tonumber(cpu))}
local function set(name, value) fields[#fields + 1] = name ; fields[#fields + 1] = value end
if fuel > 0 then redis.call('HINCRBY', job, 'fuel', fuel) end
if A.peak_memory > num(f[3]) then set('peak_memory', A.peak_memory) end
redis.call('SADD', K.usage_index, A.usage_member)
redis.call('HINCRBY', K.usage, 'runs', 1)
if fuel > 0 then redis.call('HINCRBY', K.usage, 'fuel', fuel) end
redis.call('HINCRBYFLOAT', K.usage, 'wall_seconds', wall)
redis.call('HINCRBYFLOAT', K.usage, 'cpu_seconds', cpu)
-- the largest memory one run of this extension and tenant used (a Prometheus gauge)
if A.peak_memory > num(redis.call('HGET', K.usage, 'peak_memory')) then
  redis.call('HSET', K.usage, 'peak_memory', A.peak_memory)
end

local control = f[4] or ''
local progressed = num(f[5]) > num(f[6])
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
  if not progressed then stalls = num(f[7]) + 1 end
  set('stalls', stalls)
  if stalls >= A.max_stalls then
    status = 'failed'
    err = 'no progress across ' .. stalls .. ' attempts (no new checkpoint); last: ' .. A.detail
  else
    status = 'queued'
    if kind == 'retry' then delay = A.delay_ms end
  end
end
if progressed and status ~= 'queued' then set('stalls', 0) end

redis.call('DEL', K.lease)
redis.call('SREM', K.active, job_id)
redis.call('ZREM', K.ext_running, job_id)
set('status', status)
local gone = {'worker'}
local dispatch = num(f[8])
if status == 'queued' then
  redis.call('HINCRBY', K.usage, 'continued', 1)  -- runs by outcome: a slice ended or a retry is due
  dispatch = dispatch + 1
  set('dispatch', dispatch)
  set('queued_at', now)
  set('last_interrupt', A.detail)
  if kind == 'retry' then set('last_error', err) end
  redis.call('HSET', job, unpack(fields))
  redis.call('HDEL', job, unpack(gone))
  redis.call('ZADD', K.queued, now, job_id)
  if delay > 0 then
    redis.call('ZADD', K.outbox, now + delay, job_id)
  else
    redis.call('ZADD', K.outbox, now + A.grace_ms, job_id)
  end
  event(K.events, now, kind == 'retry' and 'retrying' or 'continued',
    {worker = worker, dispatch = dispatch, delay_ms = delay, why = A.detail})
else
  -- only a terminal job has finished; a paused one says since when it is paused
  if status == 'paused' then set('paused_at', now) else set('finished_at', now) end
  if status == 'completed' and #A.result > A.inline_result_bytes then
    -- a large result lives beside the record, so reading or listing records stays cheap
    redis.call('SET', K.result_key, A.result)
    set('result_bytes', #A.result)
    set('progress', 1)
    gone[#gone + 1] = 'error'
    gone[#gone + 1] = 'result'
  elseif status == 'completed' then
    set('result', A.result)
    set('progress', 1)
    gone[#gone + 1] = 'error'
  elseif status == 'failed' then
    set('error', err)
  end
  redis.call('HSET', job, unpack(fields))
  redis.call('HDEL', job, unpack(gone))
  redis.call('HINCRBY', K.usage, status, 1)
  event(K.events, now, status, {worker = worker, error = (status == 'failed') and err or nil})
  if status ~= 'paused' then
    local why = (status == 'failed') and ('job ' .. job_id .. ' failed: ' .. err) or ('job ' .. job_id .. ' cancelled')
    celery_result(K.celery_result, f[12] or job_id, status, A.result, why, A.result_expires_ms)
  end
  retire(job, {K.state, K.logs_key, K.warnings_key, K.events, K.result_key, K.snapshot_a, K.snapshot_b,
    K.celery_result},
    K.expiring, job_id, now,
    A.retain_ms, A.max_retain_ms, f[11])
end
local woken = wake_next(K.ext_waiting, K.outbox, now + A.grace_ms)
return {status, dispatch, woken, (status == 'failed') and err or ''}
