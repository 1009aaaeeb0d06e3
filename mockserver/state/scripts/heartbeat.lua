-- A replica says it is alive (ARGV[3] seconds more), or leaves (ARGV[3] = 0), if the store still
-- plays its fingerprint (ARGV[4]; '' skips the check). Returns 1, or 0 when the fingerprint
-- differs (another set took the store over while this replica could not say it was alive).
-- ARGV: prefix, replica id, seconds, fingerprint
if ARGV[4] ~= '' and redis.call('GET', P .. 'fingerprint') ~= ARGV[4] then
  return 0
end
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', P .. 'replicas', real_now() + tonumber(ARGV[3]), ARGV[2])
else
  redis.call('ZREM', P .. 'replicas', ARGV[2])
end
return 1
