-- A replica says it is alive (ARGV[3] seconds more), or leaves (ARGV[3] = 0).
-- ARGV: prefix, replica id, seconds
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', P .. 'replicas', real_now() + tonumber(ARGV[3]), ARGV[2])
else
  redis.call('ZREM', P .. 'replicas', ARGV[2])
end
return 1
