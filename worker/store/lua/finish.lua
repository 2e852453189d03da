-- The end of one run, fenced by the lease: the job's next status, usage, and what to send next.
-- A completed job is completed exactly once: only the lease holder of a running job gets here.
-- KEYS: job, lease, active, outbox, ext_running, ext_waiting, events, usage, usage_index
-- ARGV: token, kind ('completed'|'failed'|'interrupted'|'retry'), result, error, delay_ms,
--       max_stalls, fuel, wall_seconds, peak_memory, usage_member, job_id, grace_ms, detail
-- Returns {status, dispatch, woken_job_id or ''}
local job, token, kind, job_id = KEYS[1], ARGV[1], ARGV[2], ARGV[11]
if not holds(job, KEYS[2], token) then return lease_lost(token) end
if redis.call('HGET', job, 'status') ~= 'running' then return lease_lost(token) end
local now = now_ms()
local worker = redis.call('HGET', job, 'worker') or ''
local fuel, wall = tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call('HINCRBY', job, 'fuel', fuel)
redis.call('HINCRBYFLOAT', job, 'wall_seconds', wall)
if tonumber(ARGV[9]) > hget_num(job, 'peak_memory') then redis.call('HSET', job, 'peak_memory', ARGV[9]) end
redis.call('SADD', KEYS[9], ARGV[10])
redis.call('HINCRBY', KEYS[8], 'runs', 1)
redis.call('HINCRBY', KEYS[8], 'fuel', fuel)
redis.call('HINCRBYFLOAT', KEYS[8], 'wall_seconds', wall)

local control = redis.call('HGET', job, 'control') or ''
local progressed = hget_num(job, 'checkpoints') > hget_num(job, 'ckpt_at_claim')
local status, err = nil, ARGV[4]
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
  if stalls >= tonumber(ARGV[6]) then
    status = 'failed'
    err = 'no progress across ' .. stalls .. ' attempts (no new checkpoint); last: ' .. ARGV[13]
  else
    status = 'queued'
    if kind == 'retry' then delay = tonumber(ARGV[5]) end
  end
end
if progressed and status ~= 'queued' then redis.call('HSET', job, 'stalls', 0) end

redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], job_id)
redis.call('ZREM', KEYS[5], job_id)
redis.call('HSET', job, 'status', status, 'updated_at', now, 'control', '')
redis.call('HDEL', job, 'worker')
local dispatch = hget_num(job, 'dispatch')
if status == 'queued' then
  dispatch = redis.call('HINCRBY', job, 'dispatch', 1)
  redis.call('HSET', job, 'queued_at', now, 'last_interrupt', ARGV[13])
  if kind == 'retry' then redis.call('HSET', job, 'last_error', err) end
  if delay > 0 then
    redis.call('ZADD', KEYS[4], now + delay, job_id)
  else
    redis.call('ZADD', KEYS[4], now + tonumber(ARGV[12]), job_id)
  end
  event(KEYS[7], now, kind == 'retry' and 'retrying' or 'continued',
    {worker = worker, dispatch = dispatch, delay_ms = delay, why = ARGV[13]})
else
  redis.call('HSET', job, 'finished_at', now)
  if status == 'completed' then
    redis.call('HSET', job, 'result', ARGV[3], 'progress', 1)
    redis.call('HDEL', job, 'error')
  elseif status == 'failed' then
    redis.call('HSET', job, 'error', err)
  end
  redis.call('HINCRBY', KEYS[8], status, 1)
  event(KEYS[7], now, status, {worker = worker, error = (status == 'failed') and err or nil})
end
-- a slot of this extension is free now: wake the longest-waiting job
local woken = ''
local popped = redis.call('ZPOPMIN', KEYS[6])
if popped[1] then
  woken = popped[1]
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[12]), woken)
end
return {status, dispatch, woken}
