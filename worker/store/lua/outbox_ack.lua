-- A message for dispatch `A.dispatch` was published: drop the outbox entry unless a newer one replaced it.
local K = named_keys('outbox', 'job')
local A = args()
if hget_num(K.job, 'dispatch') == A.dispatch then
  return redis.call('ZREM', K.outbox, A.job_id)
end
return 0
