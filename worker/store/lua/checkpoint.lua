-- One fenced write of a checkpoint and/or pending progress: state, counters, log tail, warnings.
-- In 'state' mode the bytes are not an argument: the caller SETs them on the staging key in the
-- same write, just before this script, and this script commits them (RENAME onto the state key,
-- PERSIST) or drops them (DEL) when the lease is not held or they are too large.
-- Every redis.call costs a few microseconds here, so the fields of the record go in one HSET.
-- KEYS: job, lease, state, logs, warnings, staging
-- ARGV: token, mode ('state'|'progress'), (unused), max_state_bytes, progress ('' = unchanged),
--       has_message ('1'|'0'), message, items_delta, bytes_delta, logs_kept, warnings_kept,
--       n_logs, <n_logs JSON lines>, <warnings...>
local job, token = KEYS[1], ARGV[1]
local staged = ARGV[2] == 'state'
if not holds(job, KEYS[2], token) then
  if staged then redis.call('DEL', KEYS[6]) end
  return lease_lost(token)
end
local now = now_ms()
local checkpoints
local fields = {'updated_at', now}
if staged then
  local size = redis.call('STRLEN', KEYS[6])
  if size == 0 and redis.call('EXISTS', KEYS[6]) == 0 then
    return redis.error_reply('STAGING_MISSING the staged checkpoint expired or was never written')
  end
  if size > tonumber(ARGV[4]) then
    redis.call('DEL', KEYS[6])
    return redis.error_reply('TOO_LARGE checkpoint of ' .. size .. ' bytes exceeds ' .. ARGV[4])
  end
  redis.call('RENAME', KEYS[6], KEYS[3])
  redis.call('PERSIST', KEYS[3])
  checkpoints = redis.call('HINCRBY', job, 'checkpoints', 1)
  fields[#fields + 1] = 'checkpoint_at'
  fields[#fields + 1] = now
  -- the progress this checkpoint stands for: the new one, or the record's
  fields[#fields + 1] = 'ckpt_progress'
  fields[#fields + 1] = ARGV[5] ~= '' and ARGV[5] or (redis.call('HGET', job, 'progress') or '0')
else
  checkpoints = hget_num(job, 'checkpoints')
end
if ARGV[5] ~= '' then
  fields[#fields + 1] = 'progress'
  fields[#fields + 1] = ARGV[5]
end
if ARGV[6] == '1' then
  fields[#fields + 1] = 'message'
  fields[#fields + 1] = ARGV[7]
end
redis.call('HSET', job, unpack(fields))
if tonumber(ARGV[8]) ~= 0 then redis.call('HINCRBY', job, 'items', ARGV[8]) end
if tonumber(ARGV[9]) ~= 0 then redis.call('HINCRBY', job, 'bytes', ARGV[9]) end
-- RPUSH ARGV[first..last] onto key, at most 1000 a call (unpack's stack is limited), and trim it.
local function append(key, first, last, kept)
  if last < first then return end
  for j = first, last, 1000 do redis.call('RPUSH', key, unpack(ARGV, j, math.min(j + 999, last))) end
  redis.call('LTRIM', key, -tonumber(kept), -1)
end
local n_logs = tonumber(ARGV[12])
append(KEYS[4], 13, 12 + n_logs, ARGV[10])
append(KEYS[5], 13 + n_logs, #ARGV, ARGV[11])
return checkpoints
