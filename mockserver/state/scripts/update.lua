-- Write what the admin API changed on a task, if nobody changed the task since it was read.
-- ARGV: prefix, task id, version read, scenario seconds the task has left to live, then field
-- and value pairs (an empty value deletes the field). Returns 1, 0 (changed meanwhile: read
-- again) or -1 (gone).
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
end
return 1
