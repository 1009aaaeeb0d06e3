-- A replica joins: check its fingerprint (contract, scenarios, key map, settings) against the
-- one in the store, register its scenarios and itself. A different fingerprint is refused
-- while any replica that holds the stored one is alive; with none alive, the newcomer takes
-- over. ARGV: prefix, replica id, heartbeat seconds, fingerprint (JSON), then scenario name
-- and entry pairs. Returns {"ok", took over (1/0)} or {"differs", stored fingerprint, live}.
local real = real_now()
redis.call('ZREMRANGEBYSCORE', P .. 'replicas', '-inf', real)
local stored = redis.call('GET', P .. 'fingerprint')
local took_over = 0
if stored and stored ~= ARGV[4] then
  local live = redis.call('ZCARD', P .. 'replicas')
  if live > 0 then
    return {'differs', stored, live}
  end
  took_over = 1 -- what the old set chose at run time may name scenarios this one lacks: forget it
  redis.call('DEL', P .. 'registry', P .. 'pushed', P .. 'default', P .. 'added', P .. 'added:src', P .. 'clock')
end
redis.call('SET', P .. 'fingerprint', ARGV[4])
for i = 5, #ARGV, 2 do
  redis.call('HSET', P .. 'registry', ARGV[i], ARGV[i + 1])
end
if redis.call('EXISTS', MADE) == 0 then -- tasks kept by a version without the creation index: index them, once
  for _, id in ipairs(redis.call('ZRANGE', TASKS, 0, -1)) do
    local number = redis.call('HGET', task_key(id), 'n')
    if number then
      redis.call('ZADD', MADE, number, id)
    end
  end
end
if ARGV[2] ~= '' then
  redis.call('ZADD', P .. 'replicas', real + tonumber(ARGV[3]), ARGV[2])
end
return {'ok', took_over}
