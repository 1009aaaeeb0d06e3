-- Write what the admin API changed on a task, if nobody changed the task since it was read.
-- ARGV: prefix, task id, version read, scenario seconds the task has left to live, then field
-- and value pairs (an empty value deletes the field). A task in the ledger is due to be looked
-- at now (it may have ended). Returns 1, 0 (changed meanwhile: read again) or -1 (gone).
local key = task_key(ARGV[2])
local version = redis.call('HGET', key, 'ver')
if not version then
  return -1
end
if version ~= ARGV[3] then
  return 0
end
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', key, ARGV[i])
  else
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  end
end
redis.call('HINCRBY', key, 'ver', 1)
local now, mode, speed, real = clock()
if now then
  local life = math.max(tonumber(ARGV[4]), 0) / pace(mode, speed) + 1
  redis.call('PEXPIRE', key, math.ceil(life * 1000))
  redis.call('ZADD', TASKS, real + life, ARGV[2])
  local name = redis.call('HGET', key, 's')
  if name then
    redis.call('ZADD', FIN, 'XX', fmt(now), ARGV[2] .. '\t' .. name)
  end
end
return 1
