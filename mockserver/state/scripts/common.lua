-- Shared by every script (prepended when the scripts are loaded). ARGV[1] is the key prefix,
-- "{name}:", so that every key of one fake hashes to one slot.
local P = ARGV[1]

local function fmt(x)
  return string.format('%.17g', x)
end

local function real_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- The clock: mode, speed and an anchor pair (scenario time, Redis's real time). Returns
-- now, mode, speed, real; nil when the clock was never set (a new or emptied Redis).
local function clock()
  local c = redis.call('HMGET', P .. 'clock', 'mode', 'speed', 'anchor', 'real')
  if not c[1] then
    return nil
  end
  local real = real_now()
  local anchor = tonumber(c[3])
  local speed = tonumber(c[2])
  if c[1] == 'manual' then
    return anchor, c[1], speed, real
  end
  return anchor + (real - tonumber(c[4])) * speed, c[1], speed, real
end

-- How many real seconds a span of scenario time lasts at the clock's pace (a manual clock
-- counts as speed 1: it bounds how long a task is kept while nobody moves the clock).
local function pace(mode, speed)
  if mode == 'manual' then
    return 1
  end
  return speed
end

-- A scenario as the scripts need it (JSON written by the replicas: submit plan, mix members,
-- held steps, poll rules, when it disappears and when it ends); nil when unknown.
local function scenario(name)
  local entry = redis.call('HGET', P .. 'added', name)
  if not entry then
    entry = redis.call('HGET', P .. 'registry', name)
  end
  if not entry then
    return nil
  end
  return cjson.decode(entry)
end

-- Tasks live under a generation, which reset moves on: one write forgets them all at once.
local GEN = redis.call('GET', P .. 'gen') or '0'
local TASKS = P .. 'tasks:' .. GEN
-- The same ids scored by their creation number (`created`): the newest tasks, and listing in order.
local MADE = P .. 'made:' .. GEN
local function task_key(id)
  return P .. 't:' .. GEN .. ':' .. id
end
-- Callbacks of this generation: deliveries by id (dl), due ones by time (due), claimed ones by
-- lease end (lease), a task's delivery ids (t:<task>) and its attempted events (s:<task>).
local CB = P .. 'cb:' .. GEN .. ':'
-- The ledger (with the metrics on): "id<TAB>scenario" of each task whose end no replica has counted
-- yet, scored by the scenario time it is due to be looked at (its lifecycle's end, a change).
local FIN = P .. 'fin:' .. GEN

-- One API key's task ids, scored by creation (a client's list operation).
local function key_tasks(key_id)
  return P .. 'k:' .. GEN .. ':' .. key_id
end

local function need_init()
  return redis.error_reply('NOINIT the store holds no clock or scenario registry (new or emptied)')
end

-- Re-anchor the clock with a new mode and speed, keeping its reading. Returns now, mode, speed
-- and how much slower the new pace is (the caller stretches the tasks' TTLs by that, in steps).
local function configure(new_mode, new_speed)
  local now, mode, speed, real = clock()
  if not now then
    return nil
  end
  if new_mode == '' then
    new_mode = mode
  end
  if new_speed == '' then
    new_speed = speed
  else
    new_speed = tonumber(new_speed)
  end
  redis.call('HSET', P .. 'clock', 'mode', new_mode, 'speed', fmt(new_speed), 'anchor', fmt(now), 'real', fmt(real))
  return now, new_mode, new_speed, pace(mode, speed) / pace(new_mode, new_speed)
end

-- Forget the tasks whose keys Redis has expired by real time `real` (their score in TASKS), in
-- both indexes, 500 at a time (so that unpack stays within Lua's limits). Returns how many.
local function evict(real)
  local gone = 0
  while true do
    local ids = redis.call('ZRANGEBYSCORE', TASKS, '-inf', real, 'LIMIT', 0, 500)
    if #ids == 0 then
      break
    end
    redis.call('ZREM', TASKS, unpack(ids))
    redis.call('ZREM', MADE, unpack(ids))
    gone = gone + #ids
  end
  if gone > 0 then
    redis.call('INCRBY', P .. 'evicted', gone)
  end
  return gone
end
