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

-- True when `token` holds the job's lease right now; counts refused writes otherwise.
local function holds(job_key, lease_key, token)
  local tok = lease_of(lease_key)
  if tok ~= nil and tok == tonumber(token) then return true end
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
-- prune the job from the jobs index. Call it last: a key written after it would outlive the rest.
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

local function hget_num(key, field)
  return tonumber(redis.call('HGET', key, field) or '0') or 0
end
