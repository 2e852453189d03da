-- Register a module under id@version; an id@version is immutable once registered.
-- KEYS: versions, ext_ids, module, module_meta
-- ARGV: id, version, digest, module_bytes, <meta field, value> pairs...
local existing = redis.call('HGET', KEYS[1], ARGV[2])
if existing and existing ~= ARGV[3] then
  return redis.error_reply('IMMUTABLE ' .. ARGV[1] .. '@' .. ARGV[2] .. ' is already ' .. existing)
end
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], ARGV[4]) end
local meta = {}
for i = 5, #ARGV do meta[#meta + 1] = ARGV[i] end
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('HSET', KEYS[4], 'added_at', now_ms(), unpack(meta))
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
if existing then return 0 end
return 1
