-- Register a module as one release id@version; an id@version is immutable once registered.
-- The same bytes may be several releases (say, a new version that only changes the manifest).
-- The id belongs to its owners' keys: the first release binds it to its publisher (only to a
-- key the operator registered, under closed registration); later versions need an owner's key.
local K = named_keys('versions', 'ext_ids', 'module', 'module_meta', 'release', 'owners', 'publishers')
local A = args()
local existing = redis.call('HGET', K.versions, A.version)
if existing and existing ~= A.digest then
  return redis.error_reply('IMMUTABLE ' .. A.id .. '@' .. A.version .. ' is already ' .. existing)
end
if existing then return 0 end
if redis.call('SCARD', K.owners) == 0 then
  if A.registration == 'closed' and redis.call('HEXISTS', K.publishers, A.publisher) == 0 then
    return redis.error_reply('NOT_PUBLISHER the operator has not registered this publisher key;'
      .. ' registration of new extension ids is closed')
  end
  redis.call('SADD', K.owners, A.publisher)
elseif redis.call('SISMEMBER', K.owners, A.publisher) == 0 then
  return redis.error_reply('NOT_OWNER ' .. A.id .. ' belongs to other publishers;'
    .. ' sign with an owner\'s key (wasmjob owners ' .. A.id .. ')')
end
local now = now_ms()
if redis.call('EXISTS', K.module) == 0 then redis.call('SET', K.module, A.module_bytes) end
if redis.call('EXISTS', K.module_meta) == 0 then
  redis.call('HSET', K.module_meta, 'id', A.id, 'version', A.version, 'size', A.size, 'added_at', now)
end
redis.call('HSET', K.release, 'digest', A.digest, 'manifest', A.manifest_json, 'jobs', A.jobs_json,
  'size', A.size, 'added_at', now, 'publisher', A.publisher, 'signature', A.signature)
redis.call('HSET', K.versions, A.version, A.digest)
redis.call('SADD', K.ext_ids, A.id)
return 1
