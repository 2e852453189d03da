-- A worker claims a delivered job: checks its status, the message's dispatch number and the
-- extension's fleet-wide concurrency, then takes the lease and marks the job running.
-- On success it also returns the record and the last checkpoint, saving the worker two reads.
-- Returns {'ok', token, checkpoints, attempts, {record field, value...}, [state]}
--       | {'skip', why} | {'held', owner} | {'wait', running} | {'ext', actual_ext_id}
local K = named_keys('job', 'lease', 'active', 'outbox', 'ext_running', 'ext_waiting', 'events', 'state')
local A = args()
local job, owner, ttl, job_id = K.job, A.owner, A.ttl_ms, A.job_id
if redis.call('EXISTS', job) == 0 then return {'skip', 'missing'} end
local ext_id = redis.call('HGET', job, 'ext_id') or ''
if ext_id ~= A.ext_id then return {'ext', ext_id} end
local status = redis.call('HGET', job, 'status')
if status ~= 'queued' and status ~= 'running' then return {'skip', status} end
local current = hget_num(job, 'dispatch')
local dispatch = A.dispatch
if dispatch < current then return {'skip', 'stale'} end
if dispatch > current then return {'skip', 'unknown-dispatch'} end
local tok, holder = lease_of(K.lease)
if tok ~= nil then
  -- the same claim retried after a lost reply gets the same answer
  if holder == owner then
    return {'ok', tok, hget_num(job, 'checkpoints'), hget_num(job, 'attempts'),
      redis.call('HGETALL', job), redis.call('GET', K.state)}
  end
  return {'held', holder}
end
if status == 'running' then return {'skip', 'running-unleased'} end
local now = now_ms()
local limit = hget_num(job, 'concurrent')
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
local token = redis.call('HINCRBY', job, 'fence', 1)
redis.call('SET', K.lease, token .. '|' .. owner, 'PX', ttl)
redis.call('SADD', K.active, job_id)
redis.call('ZREM', K.outbox, job_id)
redis.call('ZREM', K.ext_waiting, job_id)
redis.call('ZADD', K.ext_running, now + ttl, job_id)
local checkpoints = hget_num(job, 'checkpoints')
local attempts = redis.call('HINCRBY', job, 'attempts', 1)
redis.call('HSET', job, 'status', 'running', 'worker', owner, 'run_started_at', now,
  'ckpt_at_claim', checkpoints, 'updated_at', now)
if not redis.call('HGET', job, 'started_at') then redis.call('HSET', job, 'started_at', now) end
if checkpoints > 0 then
  redis.call('HSET', job, 'progress', redis.call('HGET', job, 'ckpt_progress') or '0')
end
event(K.events, now, 'claimed', {worker = owner, token = token, attempt = attempts,
  from_checkpoint = checkpoints})
return {'ok', token, checkpoints, attempts, redis.call('HGETALL', job), redis.call('GET', K.state)}
