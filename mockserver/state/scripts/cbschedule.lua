-- Deliveries of a task's callbacks to make. ARGV: prefix, task id, replan (1/0), retention
-- (scenario seconds: how long a task's record of its attempted events is kept), then for each
-- delivery its id, its due time (scenario seconds) and its JSON. With replan, the task's
-- deliveries not attempted yet are dropped first. Returns how many were dropped for space.
local now, mode, speed = clock()
if not now then
  return need_init()
end
local mine = CB .. 't:' .. ARGV[2]
if ARGV[3] == '1' then
  for _, id in ipairs(redis.call('SMEMBERS', mine)) do
    local text = redis.call('HGET', CB .. 'dl', id)
    local delivery = text and cjson.decode(text)
    if delivery and delivery.attempt == 1 and not delivery.redelivery and redis.call('ZSCORE', CB .. 'due', id) then
      redis.call('ZREM', CB .. 'due', id)
      redis.call('HDEL', CB .. 'dl', id)
      redis.call('SREM', mine, id)
    end
  end
end
local dropped = 0
for i = 5, #ARGV, 3 do
  if redis.call('HLEN', CB .. 'dl') >= 100000 then
    dropped = dropped + 1 -- bounded: a flood of tasks cannot hold memory for ever
  else
    redis.call('HSET', CB .. 'dl', ARGV[i], ARGV[i + 2])
    redis.call('ZADD', CB .. 'due', tonumber(ARGV[i + 1]), ARGV[i])
    redis.call('SADD', mine, ARGV[i])
  end
end
redis.call('PEXPIRE', mine, math.ceil(tonumber(ARGV[4]) / pace(mode, speed) * 1000) + 60000)
return dropped
