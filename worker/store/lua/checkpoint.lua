-- One fenced write of a checkpoint and/or pending progress: state, counters, log tail, warnings.
-- In 'state' mode the bytes are not an argument: the caller SETs them on the staging key in the
-- same write, just before this script, and this script commits them (RENAME onto the state key,
-- PERSIST) or drops them (DEL) when the lease is not held or they are too large.
-- Every redis.call costs a few microseconds here, so the fields of the record go in one HSET.
-- A.progress is '' when unchanged; A.logs are JSON lines.
local K = named_keys('job', 'lease', 'state', 'logs_key', 'warnings_key', 'staging')
local A = args()
local job, token = K.job, A.token
local staged = A.mode == 'state'
if not holds(job, K.lease, token, A.owner) then
  if staged then redis.call('DEL', K.staging) end
  return lease_lost(token)
end
local now = now_ms()
local checkpoints
local fields = {'updated_at', now}
if staged then
  local size = redis.call('STRLEN', K.staging)
  if size == 0 and redis.call('EXISTS', K.staging) == 0 then
    return redis.error_reply('STAGING_MISSING the staged checkpoint expired or was never written')
  end
  if size > A.max_state_bytes then
    redis.call('DEL', K.staging)
    return redis.error_reply('TOO_LARGE checkpoint of ' .. size .. ' bytes exceeds ' .. A.max_state_bytes)
  end
  redis.call('RENAME', K.staging, K.state)
  redis.call('PERSIST', K.state)
  checkpoints = redis.call('HINCRBY', job, 'checkpoints', 1)
  fields[#fields + 1] = 'checkpoint_at'
  fields[#fields + 1] = now
  -- the progress this checkpoint stands for: the new one, or the record's
  fields[#fields + 1] = 'ckpt_progress'
  fields[#fields + 1] = A.progress ~= '' and A.progress or (redis.call('HGET', job, 'progress') or '0')
else
  checkpoints = hget_num(job, 'checkpoints')
end
if A.progress ~= '' then
  fields[#fields + 1] = 'progress'
  fields[#fields + 1] = A.progress
end
if A.has_message then
  fields[#fields + 1] = 'message'
  fields[#fields + 1] = A.message
end
redis.call('HSET', job, unpack(fields))
if A.items_delta ~= 0 then redis.call('HINCRBY', job, 'items', A.items_delta) end
if A.bytes_delta ~= 0 then redis.call('HINCRBY', job, 'bytes', A.bytes_delta) end
-- RPUSH lines onto key, at most 1000 a call (unpack's stack is limited), and trim it.
local function append(key, lines, kept)
  local n = #lines
  if n == 0 then return end
  for j = 1, n, 1000 do redis.call('RPUSH', key, unpack(lines, j, math.min(j + 999, n))) end
  redis.call('LTRIM', key, -kept, -1)
end
append(K.logs_key, A.logs, A.logs_kept)
append(K.warnings_key, A.warnings, A.warnings_kept)
return checkpoints
