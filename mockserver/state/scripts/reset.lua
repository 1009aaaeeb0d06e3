-- Forget every task, journal entry, counter, run-time choice and scenario added at run time;
-- the clock gets the configured mode and speed back and keeps its reading.
-- ARGV: prefix, mode, speed
local ids = redis.call('ZRANGE', P .. 'tasks', 0, -1)
for i = 1, #ids, 500 do
  local keys = {}
  for j = i, math.min(i + 499, #ids) do
    keys[#keys + 1] = P .. 't:' .. ids[j]
  end
  redis.call('UNLINK', unpack(keys))
end
redis.call('UNLINK', P .. 'tasks', P .. 'pushed', P .. 'default', P .. 'submissions', P .. 'journal', P .. 'added',
  P .. 'added:src', P .. 'evicted')
configure(ARGV[2], ARGV[3])
redis.call('PUBLISH', P .. 'changes', 'reset')
return 1
