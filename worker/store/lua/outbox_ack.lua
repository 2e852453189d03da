-- A message for dispatch `d` was published: drop the outbox entry unless a newer one replaced it.
-- KEYS: outbox, job    ARGV: job_id, dispatch
if tostring(hget_num(KEYS[2], 'dispatch')) == ARGV[2] then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
