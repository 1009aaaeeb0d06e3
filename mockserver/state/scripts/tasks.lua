-- The live tasks in the order they were created, a page at a time, and the clock.
-- ARGV: prefix, where to start, how many. Where to start is "newest" (the newest tasks, newest
-- first: the dashboard) or a creation number (the tasks created after it, oldest first: listing
-- page by page; "0" for the first page). Returns {now, hashes, live tasks in all, the creation
-- number to start the next page at ('' after the last page)}. Ids whose key is gone (Redis
-- evicted it under memory pressure, or an older version's replica expired it) leave both indexes
-- on the way.
local now = clock()
if not now then
  return need_init()
end
evict(real_now())
local wanted = tonumber(ARGV[3])
local ids
if ARGV[2] == 'newest' then
  ids = redis.call('ZREVRANGE', MADE, 0, wanted - 1, 'WITHSCORES')
else
  ids = redis.call('ZRANGEBYSCORE', MADE, '(' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, wanted)
end
local found, stale = {}, {}
for i = 1, #ids, 2 do
  local h = redis.call('HGETALL', task_key(ids[i]))
  if #h > 0 then
    found[#found + 1] = h
  else
    stale[#stale + 1] = ids[i]
  end
end
if #stale > 0 then
  redis.call('ZREM', MADE, unpack(stale))
  redis.call('ZREM', TASKS, unpack(stale))
end
local following = ''
if ARGV[2] ~= 'newest' and #ids == wanted * 2 then
  following = ids[#ids]
end
return {fmt(now), found, redis.call('ZCARD', TASKS), following}
