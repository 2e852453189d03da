-- Create a job record unless it exists; optionally put its first message in the outbox.
-- KEYS: job, jobs, outbox, events
-- ARGV: job_id, dispatch, enqueue ('1'|'0'), grace_ms, <field, value> pairs...
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = now_ms()
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', 'queued', 'dispatch', ARGV[2],
  'created_at', now, 'queued_at', now, 'updated_at', now, 'attempts', 0, 'checkpoints', 0,
  'stalls', 0, 'progress', 0, 'message', '', 'items', 0, 'bytes', 0, unpack(fields))
redis.call('ZADD', KEYS[2], now, ARGV[1])
if ARGV[3] == '1' then redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1]) end
event(KEYS[4], now, 'submitted', {dispatch = tonumber(ARGV[2])})
return 1
