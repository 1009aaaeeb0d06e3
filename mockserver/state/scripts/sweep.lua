-- Delete up to ARGV[3] tasks of an old generation ARGV[2] (after a reset), or stretch the TTLs of
-- up to ARGV[3] live tasks from index ARGV[4] by the factor ARGV[5] (after the clock slowed).
-- ARGV: prefix, generation ('' = the live one), count, first index, factor.
-- Returns how many it went through (0: done).
local gen = ARGV[2]
if gen == '' then
  local ids = redis.call('ZRANGE', TASKS, tonumber(ARGV[4]), tonumber(ARGV[4]) + tonumber(ARGV[3]) - 1)
  local real = real_now()
  for _, id in ipairs(ids) do
    local left = redis.call('PTTL', task_key(id))
    if left > 0 then
      left = math.ceil(left * tonumber(ARGV[5]))
      redis.call('PEXPIRE', task_key(id), left)
      redis.call('ZADD', TASKS, real + left / 1000, id)
    end
  end
  return #ids
end
local tasks = P .. 'tasks:' .. gen
local ids = redis.call('ZRANGE', tasks, 0, tonumber(ARGV[3]) - 1)
if #ids > 0 then
  local keys = {}
  for i, id in ipairs(ids) do
    keys[i] = P .. 't:' .. gen .. ':' .. id
  end
  redis.call('UNLINK', unpack(keys))
  redis.call('ZREM', tasks, unpack(ids))
end
return #ids
