-- Write what the admin API changed on a task, if nobody changed the task since it was read.
-- KEYS[1]: the task. ARGV: prefix, task id, version read, TTL in ms (0: keep), then field and
-- value pairs (an empty value deletes the field). Returns 1, 0 (changed meanwhile: read again)
-- or -1 (gone).
local version = redis.call('HGET', KEYS[1], 'ver')
if not version then
  return -1
end
if version ~= ARGV[3] then
  return 0
end
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HINCRBY', KEYS[1], 'ver', 1)
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', P .. 'tasks', real_now() + ttl / 1000, ARGV[2])
end
return 1
