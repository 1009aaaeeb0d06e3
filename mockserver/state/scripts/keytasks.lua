-- The newest tasks of one API key (a client's list operation), and the clock.
-- ARGV: prefix, key id, how many. Returns {now, hashes, newest first}; ids whose task is gone
-- (expired, or of an old generation) are dropped from the key's set on the way.
local now = clock()
if not now then
  return need_init()
end
local mine = key_tasks(ARGV[2])
local wanted = tonumber(ARGV[3])
local found, stale = {}, {}
local first = 0
while #found < wanted do
  local ids = redis.call('ZREVRANGE', mine, first, first + wanted - 1)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local h = redis.call('HGETALL', task_key(id))
    if #h > 0 then
      if #found < wanted then
        found[#found + 1] = h
      end
    else
      stale[#stale + 1] = id
    end
  end
  first = first + #ids
end
if #stale > 0 then
  redis.call('ZREM', mine, unpack(stale))
end
return {fmt(now), found}
