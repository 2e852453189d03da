-- One fenced write of a checkpoint and/or pending progress: state, counters, log tail, warnings.
-- KEYS: job, lease, state, logs, warnings
-- ARGV: token, mode ('state'|'progress'), state, max_state_bytes, progress ('' = unchanged),
--       has_message ('1'|'0'), message, items_delta, bytes_delta, logs_kept, warnings_kept,
--       n_logs, <n_logs JSON lines>, <warnings...>
local job, token = KEYS[1], ARGV[1]
if not holds(job, KEYS[2], token) then return lease_lost(token) end
local now = now_ms()
local checkpoints = hget_num(job, 'checkpoints')
if ARGV[2] == 'state' then
  if #ARGV[3] > tonumber(ARGV[4]) then
    return redis.error_reply('TOO_LARGE checkpoint of ' .. #ARGV[3] .. ' bytes exceeds ' .. ARGV[4])
  end
  redis.call('SET', KEYS[3], ARGV[3])
  checkpoints = redis.call('HINCRBY', job, 'checkpoints', 1)
  redis.call('HSET', job, 'checkpoint_at', now)
end
if ARGV[5] ~= '' then redis.call('HSET', job, 'progress', ARGV[5]) end
if ARGV[6] == '1' then redis.call('HSET', job, 'message', ARGV[7]) end
if tonumber(ARGV[8]) ~= 0 then redis.call('HINCRBY', job, 'items', ARGV[8]) end
if tonumber(ARGV[9]) ~= 0 then redis.call('HINCRBY', job, 'bytes', ARGV[9]) end
local n_logs = tonumber(ARGV[12])
local i = 13
if n_logs > 0 then
  for j = i, i + n_logs - 1 do redis.call('RPUSH', KEYS[4], ARGV[j]) end
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[10]), -1)
end
i = i + n_logs
if #ARGV >= i then
  for j = i, #ARGV do redis.call('RPUSH', KEYS[5], ARGV[j]) end
  redis.call('LTRIM', KEYS[5], -tonumber(ARGV[11]), -1)
end
if ARGV[2] == 'state' then
  redis.call('HSET', job, 'ckpt_progress', redis.call('HGET', job, 'progress') or '0')
end
redis.call('HSET', job, 'updated_at', now)
return checkpoints
