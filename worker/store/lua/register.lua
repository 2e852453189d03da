-- Register a module as one release id@version; an id@version is immutable once registered.
-- The same bytes may be several releases (say, a new version that only changes the manifest).
local K = named_keys('versions', 'ext_ids', 'module', 'module_meta', 'release')
local A = args()
local existing = redis.call('HGET', K.versions, A.version)
if existing and existing ~= A.digest then
  return redis.error_reply('IMMUTABLE ' .. A.id .. '@' .. A.version .. ' is already ' .. existing)
end
local now = now_ms()
if redis.call('EXISTS', K.module) == 0 then redis.call('SET', K.module, A.module_bytes) end
if redis.call('EXISTS', K.module_meta) == 0 then
  redis.call('HSET', K.module_meta, 'id', A.id, 'version', A.version, 'size', A.size, 'added_at', now)
end
if existing then return 0 end
redis.call('HSET', K.release, 'digest', A.digest, 'manifest', A.manifest_json, 'jobs', A.jobs_json,
  'size', A.size, 'added_at', now)
redis.call('HSET', K.versions, A.version, A.digest)
redis.call('SADD', K.ext_ids, A.id)
return 1
