-- A worker claims a delivered job: checks its status, the message's dispatch number and the
-- extension's fleet-wide concurrency, then takes the lease and marks the job running.
-- On success it also returns the record and the last checkpoint, saving the worker two reads.
-- Every redis.call costs a few microseconds, so the record is read with one HMGET and written
-- with one HSET.
-- Returns {'ok', token, checkpoints, attempts, {record field, value...}, [state]}
--       | {'skip', why} | {'held', owner} | {'wait', running} | {'ext', actual_ext_id}
local K = named_keys('job', 'lease', 'active', 'outbox', 'queued', 'ext_running', 'ext_waiting', 'events', 'state')
local A = args()
local job, owner, ttl, job_id = K.job, A.owner, A.ttl_ms, A.job_id
local f = redis.call('HMGET', job, 'status', 'ext_id', 'dispatch', 'concurrent', 'checkpoints', 'attempts',
  'fence', 'started_at', 'ckpt_progress')
local status = f[1]
if not status then return {'skip', 'missing'} end
local ext_id = f[2] or ''
if ext_id ~= A.ext_id then return {'ext', ext_id} end
if status ~= 'queued' and status ~= 'running' then return {'skip', status} end
local current = num(f[3])
local dispatch = A.dispatch
if dispatch < current then return {'skip', 'stale'} end
if dispatch > current then return {'skip', 'unknown-dispatch'} end
local checkpoints = num(f[5])
local tok, holder = lease_of(K.lease)
if tok ~= nil then
  -- the same claim retried after a lost reply gets the same answer
  if holder == owner then
    return {'ok', tok, checkpoints, num(f[6]), redis.call('HGETALL', job), redis.call('GET', K.state)}
  end
  return {'held', holder}
end
if status == 'running' then return {'skip', 'running-unleased'} end
local now = now_ms()
local limit = num(f[4])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', K.ext_running, '-inf', now)
  local running = redis.call('ZCARD', K.ext_running)
  if running >= limit then
    redis.call('ZADD', K.ext_waiting, 'NX', now, job_id)
    redis.call('ZADD', K.outbox, now + A.wait_ms, job_id)
    redis.call('HSET', job, 'message', 'waiting for a free slot (concurrent_jobs=' .. limit .. ')',
      'updated_at', now)
    return {'wait', running}
  end
end
local token = num(f[7]) + 1
local attempts = num(f[6]) + 1
local fields = {'fence', token, 'attempts', attempts, 'status', 'running', 'worker', owner,
  'run_started_at', now, 'ckpt_at_claim', checkpoints, 'updated_at', now}
if not f[8] then fields[#fields + 1] = 'started_at' ; fields[#fields + 1] = now end
if checkpoints > 0 then fields[#fields + 1] = 'progress' ; fields[#fields + 1] = f[9] or '0' end
if A.effective_limits ~= '' then
  -- what the worker expects this run's limits to be (the worker corrects them when they differ)
  fields[#fields + 1] = 'effective_limits' ; fields[#fields + 1] = A.effective_limits
  fields[#fields + 1] = 'limit_notes' ; fields[#fields + 1] = A.limit_notes
end
redis.call('HSET', job, unpack(fields))
redis.call('SET', K.lease, token .. '|' .. owner, 'PX', ttl)
redis.call('SADD', K.active, job_id)
redis.call('ZREM', K.outbox, job_id)
redis.call('ZREM', K.queued, job_id)
redis.call('ZREM', K.ext_waiting, job_id)
redis.call('ZADD', K.ext_running, now + ttl, job_id)
event(K.events, now, 'claimed', {worker = owner, token = token, attempt = attempts,
  from_checkpoint = checkpoints})
return {'ok', token, checkpoints, attempts, redis.call('HGETALL', job), redis.call('GET', K.state)}
