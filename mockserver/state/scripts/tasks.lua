-- One page of the live tasks, oldest expiry first (ARGV[4] "newest": latest expiry first, which is
-- the newest tasks first), and the clock.
-- ARGV: prefix, first index, how many[, "newest"]. Returns {now, hashes, live tasks in all}.
local now = clock()
if not now then
  return need_init()
end
local evicted = redis.call('ZREMRANGEBYSCORE', TASKS, '-inf', real_now())
if evicted > 0 then
  redis.call('INCRBY', P .. 'evicted', evicted)
end
local first = tonumber(ARGV[2])
local found = {}
local range = ARGV[4] == 'newest' and 'ZREVRANGE' or 'ZRANGE'
for _, id in ipairs(redis.call(range, TASKS, first, first + tonumber(ARGV[3]) - 1)) do
  local h = redis.call('HGETALL', task_key(id))
  if #h > 0 then
    found[#found + 1] = h
  end
end
return {fmt(now), found, redis.call('ZCARD', TASKS)}
