-- Record a callback attempt, and either make the delivery due again or forget it.
-- ARGV: prefix, delivery id, task id, event, webhook id, the attempt's JSON, attempts kept, the
-- retry's due time ('' when done), the delivery's JSON for its next attempt, retention (real
-- seconds the task's record of attempted events is kept).
if redis.call('ZREM', CB .. 'lease', ARGV[2]) == 0 and redis.call('HEXISTS', CB .. 'dl', ARGV[2]) == 0 then
  return 0 -- reset (or settled by another replica after its lease ended) while it was attempted
end
redis.call('XADD', P .. 'cb:attempts', 'MAXLEN', '~', ARGV[7], '*', 'a', ARGV[6])
local started = CB .. 's:' .. ARGV[3]
redis.call('HSET', started, ARGV[4], ARGV[5])
redis.call('PEXPIRE', started, math.ceil(tonumber(ARGV[10]) * 1000))
if ARGV[8] ~= '' then
  redis.call('HSET', CB .. 'dl', ARGV[2], ARGV[9])
  redis.call('ZADD', CB .. 'due', tonumber(ARGV[8]), ARGV[2])
else
  redis.call('HDEL', CB .. 'dl', ARGV[2])
  redis.call('SREM', CB .. 't:' .. ARGV[3], ARGV[2])
end
return 1
