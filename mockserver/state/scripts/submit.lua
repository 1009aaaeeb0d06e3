-- One submission: choose its scenario (the header's, else the next pushed one, else the key
-- map's or a rule's, else the run-time default), draw a mix member, count the submission for
-- (scenario, key), and create the task when the answer for that count creates one.
-- ARGV: prefix, header, fallback, fallback_by, configured default, key id, random [0, 1),
--       id suffix, model, aspect ratio, generate audio (1/0), retention (scenario seconds),
--       the id's text before and after its created time ('' and '': today's ids; a '-' after:
--       the whole id is the text before), seconds, width, height, the request (JSON or ''),
--       how many of a key's newest tasks its index keeps (0: no index, the contract lists none),
--       the callback URL ('' for none), the phases the client asked callbacks for ('-': the contract's),
--       the submit's W3C traceparent ('' for none: tracing is off),
--       put the task in the ledger (1/0: the metrics are on)
local now, mode, speed, real = clock()
if not now or redis.call('EXISTS', P .. 'registry') == 0 then
  return need_init()
end
local created = math.floor(now)
local id = 'task-unified-' .. string.format('%d', created) .. '-' .. ARGV[8]
if ARGV[14] == '-' then
  id = ARGV[13]
elseif ARGV[13] ~= '' or ARGV[14] ~= '' then
  id = ARGV[13] .. string.format('%d', created) .. ARGV[14]
end
local key = task_key(id)
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('IDTAKEN ' .. id)
end

local name, how, s = ARGV[2], 'header', nil
if name ~= '' then
  s = scenario(name)
else
  while not s do
    local head = redis.call('LINDEX', P .. 'pushed', 0)
    if not head then
      break
    end
    local tab = string.find(head, '\t', 1, true)
    local left = tonumber(string.sub(head, 1, tab - 1))
    name, how = string.sub(head, tab + 1), 'pushed'
    if left <= 1 then
      redis.call('LPOP', P .. 'pushed')
    else
      redis.call('LSET', P .. 'pushed', 0, (left - 1) .. '\t' .. name)
    end
    s = scenario(name) -- a push of a scenario this set does not have (an old set's) is dropped
  end
  if not s and ARGV[3] ~= '' then
    name, how = ARGV[3], ARGV[4]
    s = scenario(name)
  end
  if not s then
    name, how = redis.call('GET', P .. 'default') or ARGV[5], 'default'
    s = scenario(name)
    if not s then
      name = ARGV[5] -- the run-time default is not in this set: the configured one
      s = scenario(name)
    end
  end
end
if not s then
  return redis.error_reply('NOSCENARIO ' .. name)
end

local counters = P .. 'submissions'
if redis.call('HLEN', counters) >= 100000 then
  redis.call('DEL', counters) -- any key is accepted: do not grow for ever
end

local via = ''
if s.seq then
  local played = redis.call('HINCRBY', counters, name .. '\t' .. ARGV[6], 1)
  via, name = name, s.seq[math.min(played, #s.seq)]
  s = scenario(name)
  if not s then
    return redis.error_reply('NOSCENARIO ' .. name)
  end
elseif s.mix then
  local total = 0
  for _, member in ipairs(s.mix) do
    total = total + member[2]
  end
  local x = tonumber(ARGV[7]) * total
  local acc, chosen = 0, s.mix[#s.mix][1]
  for _, member in ipairs(s.mix) do
    acc = acc + member[2]
    if x < acc then
      chosen = member[1]
      break
    end
  end
  via, name = name, chosen
  s = scenario(name)
  if not s then
    return redis.error_reply('NOSCENARIO ' .. name)
  end
end

local count = redis.call('HINCRBY', counters, name .. '\t' .. ARGV[6], 1)
local seen, answer = 0, #s.plan
for i, step in ipairs(s.plan) do
  if step[1] < 0 then
    answer = i
    break
  end
  seen = seen + step[1]
  if count <= seen then
    answer = i
    break
  end
end

if s.plan[answer][2] == 1 then
  local number = redis.call('INCR', P .. 'created')
  redis.call('HSET', key, 'id', id, 'n', number, 's', name, 'c', string.format('%d', created), 'ca', fmt(now), 'm', ARGV[9], 'ar', ARGV[10],
    'ga', ARGV[11], 'k', ARGV[6], 'sb', how, 'p', 0, 'ver', 0, 'du', ARGV[15], 'w', ARGV[16], 'h', ARGV[17])
  if via ~= '' then
    redis.call('HSET', key, 'v', via)
  end
  if ARGV[18] ~= '' then
    redis.call('HSET', key, 'rq', ARGV[18])
  end
  if ARGV[22] ~= '' then
    redis.call('HSET', key, 'tp', ARGV[22])
  end
  if ARGV[20] ~= '' then
    redis.call('HSET', key, 'cu', ARGV[20])
    if ARGV[21] ~= '-' then
      redis.call('HSET', key, 'ce', ARGV[21])
    end
  end
  local life = ((s.ends or 0) + tonumber(ARGV[12])) / pace(mode, speed) + 1
  redis.call('PEXPIRE', key, math.ceil(life * 1000))
  redis.call('ZADD', TASKS, real + life, id)
  redis.call('ZADD', MADE, number, id)
  local window = tonumber(ARGV[19])
  if window > 0 then
    local mine = key_tasks(ARGV[6])
    redis.call('ZADD', mine, number, id)
    redis.call('ZREMRANGEBYRANK', mine, 0, -window - 1) -- the newest `window` only
    if redis.call('PTTL', mine) < life * 1000 then
      redis.call('PEXPIRE', mine, math.ceil(life * 1000))
    end
  end
  if ARGV[23] == '1' then -- due when its lifecycle ends or it disappears, else when it is forgotten
    local due = s.ends
    if s.gone and (not due or s.gone < due) then
      due = s.gone
    end
    redis.call('ZADD', FIN, now + (due or tonumber(ARGV[12])), id .. '\t' .. name)
  end
  evict(real)
else
  id = ''
end
return {name, how, via, count, id, fmt(now)}
