-- Prepended to every wasmjob script: lease parsing, fencing, time and events.
-- Keys are always passed in from Python (worker/keys.py); scripts never build them.
-- Each script's contract is a dataclass in worker/store/contracts.py: its Key fields are KEYS, in
-- order, named here with named_keys(...); the rest is one msgpack map in ARGV[1], read by args().

-- KEYS by name: named_keys('job', 'lease') is {job = KEYS[1], lease = KEYS[2]}.
local function named_keys(...)
  local names, named = {...}, {}
  if #KEYS > #names then
    error(redis.error_reply('CONTRACT ' .. #KEYS .. ' keys passed, the script names ' .. #names))
  end
  for i = 1, #names do named[names[i]] = KEYS[i] end
  return named
end

-- The script's arguments by name: the one msgpack map the caller passed as ARGV[1].
local function args()
  if #ARGV ~= 1 then error(redis.error_reply('CONTRACT expected one msgpack map of arguments, got ' .. #ARGV)) end
  return cmsgpack.unpack(ARGV[1])
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The token and owner of a lease value "<token>|<owner>", or nil when no lease is held.
local function lease_of(lease_key)
  local v = redis.call('GET', lease_key)
  if not v then return nil, nil end
  local tok, owner = string.match(v, '^(%d+)|(.*)$')
  return tonumber(tok), owner
end

-- True when the run (`token` and `owner`) holds the job's lease right now; counts refused writes
-- otherwise. The whole value is compared: a token number issued again to another run (a claim
-- lost in a failover) does not let an older run write.
local function holds(job_key, lease_key, token, owner)
  if redis.call('GET', lease_key) == token .. '|' .. owner then return true end
  if redis.call('EXISTS', job_key) == 1 then
    redis.call('HINCRBY', job_key, 'refused_writes', 1)
  end
  return false
end

local function lease_lost(token)
  return redis.error_reply('LEASE_LOST token ' .. tostring(token) .. ' no longer holds the lease')
end

-- Append one lifecycle event (a JSON object) to the job's capped event list.
local function event(events_key, now, kind, fields)
  fields = fields or {}
  fields['ts'] = now / 1000
  fields['event'] = kind
  if redis.call('RPUSH', events_key, cjson.encode(fields)) > 200 then redis.call('LTRIM', events_key, -200, -1) end
end

-- A finished job expires whole: its record and the keys in `others` (state, logs, warnings, events, a
-- result kept apart) all at the same instant, after the job's own retain_ms (from its limits) or the
-- operator's default, never past the operator's maximum; the expiring index tells the sweep when to
-- prune the job from the jobs index. Call it last: a key written after it would outlive the rest
-- (Celery's result key, set with its own expiry, goes last in `others`: it may be nil).
-- `retain` is the record's retain_ms when the caller read it already (false: the job has none).
local function retire(job_key, others, expiring_key, job_id, now, default_ms, max_ms, retain)
  if retain == nil then retain = redis.call('HGET', job_key, 'retain_ms') end
  local ms = tonumber(retain or '') or default_ms
  ms = math.max(1000, math.min(ms, max_ms))
  local at = now + ms
  redis.call('HSET', job_key, 'expires_at', at)
  redis.call('PEXPIREAT', job_key, at)
  for _, key in ipairs(others) do redis.call('PEXPIREAT', key, at) end
  redis.call('ZADD', expiring_key, at, job_id)
end

-- A hash field read by HMGET (false when missing) as a number.
local function num(value)
  return tonumber(value or '0') or 0
end

-- A slot of an extension is free: send its longest-waiting job (its id, or '' when none waits).
local function wake_next(waiting_key, outbox_key, at)
  local popped = redis.call('ZPOPMIN', waiting_key)
  if not popped[1] then return '' end
  redis.call('ZADD', outbox_key, at, popped[1])
  return popped[1]
end

local function hget_num(key, field)
  return tonumber(redis.call('HGET', key, field) or '0') or 0
end

-- TIME as Celery writes date_done: ISO 8601 in UTC with microseconds (days-to-civil by H. Hinnant).
local function iso_utc(t)
  local secs, usec = tonumber(t[1]), tonumber(t[2])
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00', y, m, d,
    math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, usec)
end

-- The job's outcome as Celery's result of the submitter's task id (the record's task_id), in the
-- Redis result backend's own format: the value under `key` (celery-task-meta-<task id>), also
-- published on the channel of that name, where a waiting AsyncResult.get() listens. Only for a
-- job that ended (completed, failed, cancelled); nothing when no key was passed (the results
-- live in another Redis: the worker writes them there).
local function celery_result(key, task_id, status, result_json, error, expires_ms)
  if not key then return end
  local state, result = 'SUCCESS', result_json
  if result == nil or result == '' then result = 'null' end
  if status == 'failed' then
    state = 'FAILURE'
    result = cjson.encode({exc_type = 'JobFailed', exc_module = 'wasmjob.errors', exc_message = {error}})
  elseif status == 'cancelled' then
    state = 'REVOKED'
    result = cjson.encode({exc_type = 'TaskRevokedError', exc_module = 'celery.exceptions', exc_message = {error}})
  end
  local meta = '{"status":' .. cjson.encode(state) .. ',"result":' .. result ..
    ',"traceback":null,"children":[],"date_done":' .. cjson.encode(iso_utc(redis.call('TIME'))) ..
    ',"task_id":' .. cjson.encode(task_id) .. '}'
  redis.call('SET', key, meta, 'PX', expires_ms)
  redis.call('PUBLISH', key, meta)
end
