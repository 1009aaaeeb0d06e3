-- Claim the callback deliveries due now for this replica, with a lease: a replica that dies
-- before settling one gives it back when the lease ends (at least once, as providers promise).
-- ARGV: prefix, how many at most, the lease (real seconds). Returns {now, next due or '',
-- the claimed deliveries' JSON...}.
local now = clock()
if not now then
  return need_init()
end
local real = real_now()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', CB .. 'lease', '-inf', real)) do
  redis.call('ZREM', CB .. 'lease', id) -- a lease that ended: due again, at once
  if redis.call('HEXISTS', CB .. 'dl', id) == 1 then
    redis.call('ZADD', CB .. 'due', now, id)
  end
end
local out = {fmt(now), ''}
local ids = redis.call('ZRANGEBYSCORE', CB .. 'due', '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', CB .. 'due', id)
  local text = redis.call('HGET', CB .. 'dl', id)
  if text then
    redis.call('ZADD', CB .. 'lease', real + tonumber(ARGV[3]), id)
    out[#out + 1] = text
  end
end
local following = redis.call('ZRANGE', CB .. 'due', 0, 0, 'WITHSCORES')
if following[2] then
  out[2] = following[2]
end
return out
