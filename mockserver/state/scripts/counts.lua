-- Counts for the health endpoint. ARGV: prefix, the journal size.
local real = real_now()
evict(real)
redis.call('ZREMRANGEBYSCORE', P .. 'replicas', '-inf', real)
return {
  redis.call('ZCARD', TASKS),
  tonumber(redis.call('GET', P .. 'evicted') or '0'),
  math.min(redis.call('XLEN', P .. 'journal'), tonumber(ARGV[2])),
  redis.call('ZCARD', P .. 'replicas'),
}
