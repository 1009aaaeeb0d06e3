-- A task as a client's poll (or a peek) finds it.
-- ARGV: prefix, task id, count the poll (1/0), check the retention (1/0), retention (scenario seconds),
-- keep the real time of a counted poll in field lp (1/0: the metrics are on)
-- Returns nil for an unknown task; else {"ok" or "gone", now, the task's fields as they were
-- before this poll, Redis's real time}. A counted poll of a live task adds one to its polls and, unless the
-- scenario answers that poll with an error or the admin API forced the task, one read to the
-- first held step it is waiting on, exactly as mockserver.lifecycle.observe counts it.
local key = task_key(ARGV[2])
local h = redis.call('HGETALL', key)
if #h == 0 then
  return nil
end
local now, _, _, real = clock()
if not now then
  return need_init()
end
local t = {}
for i = 1, #h, 2 do
  t[h[i]] = h[i + 1]
end
local s = scenario(t.s)
local verdict = 'ok'
local age = now - tonumber(t.ca)
if t.fz then
  age = tonumber(t.fz)
end
if t.del then
  verdict = 'gone' -- a client deleted it
elseif s then
  if s.gone and age >= s.gone then
    verdict = 'gone'
  elseif ARGV[4] == '1' then
    local ends = s.ends or 0
    if t.f or t.fz then
      ends = math.max(ends, tonumber(t.cat or '0'), tonumber(t.fz or '0'))
    end
    if now - tonumber(t.ca) - ends > tonumber(ARGV[5]) then
      verdict = 'gone'
    end
  end
end
if verdict == 'ok' and ARGV[3] == '1' then
  local polls = redis.call('HINCRBY', key, 'p', 1)
  redis.call('HINCRBY', key, 'ver', 1)
  if ARGV[6] == '1' then
    redis.call('HSET', key, 'lp', fmt(real))
  end
  if s and s.held and not t.f then
    local answered = true
    for _, rule in ipairs(s.polls or {}) do
      if rule[1] == 1 or polls <= rule[2] or rule[3][tostring(polls)] then
        answered = rule[4] == 1
        break
      end
    end
    if answered then
      for _, held in ipairs(s.held) do
        if held[2] > age then
          break
        end
        if tonumber(t['r' .. held[1]] or '0') < held[3] then
          redis.call('HINCRBY', key, 'r' .. held[1], 1)
          break
        end
      end
    end
  end
end
return {verdict, fmt(now), h, fmt(real)}
