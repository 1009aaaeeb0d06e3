-- Every live task, oldest first, and the clock. ARGV: prefix.
local now = clock()
if not now then
  return need_init()
end
local real = real_now()
local evicted = redis.call('ZREMRANGEBYSCORE', P .. 'tasks', '-inf', real)
if evicted > 0 then
  redis.call('INCRBY', P .. 'evicted', evicted)
end
local found = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'tasks', 0, -1)) do
  local h = redis.call('HGETALL', P .. 't:' .. id)
  if #h > 0 then
    found[#found + 1] = h
  end
end
return {fmt(now), found}
