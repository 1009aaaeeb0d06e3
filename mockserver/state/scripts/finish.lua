-- The ledger of tasks whose end no replica has counted yet (the metrics).
-- ARGV: prefix, "look", how many: the entries due by the clock's reading, earliest first, each
--       {member, due, the task's fields (none once it is gone)}; returns {now, entries in the
--       ledger, found}.
-- ARGV: prefix, "claim", n, n members ended, then (member, due as looked, due again) triples:
--       takes the ended ones out (each once, whichever replica claims it: returns those this call
--       took) and makes the others due again, unless a change made them due meanwhile.
if ARGV[2] == 'look' then
  local now = clock()
  if not now then
    return need_init()
  end
  local due = redis.call('ZRANGEBYSCORE', FIN, '-inf', fmt(now), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
  local found = {}
  for i = 1, #due, 2 do
    local tab = string.find(due[i], '\t', 1, true)
    found[#found + 1] = {due[i], due[i + 1], redis.call('HGETALL', task_key(string.sub(due[i], 1, tab - 1)))}
  end
  return {fmt(now), redis.call('ZCARD', FIN), found}
end
local n = tonumber(ARGV[3])
local taken = {}
for i = 4, 3 + n do
  if redis.call('ZREM', FIN, ARGV[i]) == 1 then
    taken[#taken + 1] = ARGV[i]
  end
end
for i = 4 + n, #ARGV, 3 do
  if redis.call('ZSCORE', FIN, ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', FIN, ARGV[i + 2], ARGV[i])
  end
end
return taken
