-- Register a module as one release id@version; an id@version is immutable once registered.
-- The same bytes may be several releases (say, a new version that only changes the manifest).
-- KEYS: versions, ext_ids, module, module_meta, release
-- ARGV: id, version, digest, module_bytes, manifest_json, jobs_json, size
local existing = redis.call('HGET', KEYS[1], ARGV[2])
if existing and existing ~= ARGV[3] then
  return redis.error_reply('IMMUTABLE ' .. ARGV[1] .. '@' .. ARGV[2] .. ' is already ' .. existing)
end
local now = now_ms()
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], ARGV[4]) end
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('HSET', KEYS[4], 'id', ARGV[1], 'version', ARGV[2], 'size', ARGV[7], 'added_at', now)
end
if existing then return 0 end
redis.call('HSET', KEYS[5], 'digest', ARGV[3], 'manifest', ARGV[5], 'jobs', ARGV[6], 'size', ARGV[7],
  'added_at', now)
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
