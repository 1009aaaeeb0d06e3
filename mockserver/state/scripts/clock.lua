-- The shared clock. ARGV: prefix, operation, then its arguments:
--   init MODE SPEED START   set the clock unless it is set (START '' = now)
--   read
--   advance SECONDS LATEST  move scenario time forward
--   configure MODE SPEED    ('' keeps either) re-anchor: the reading does not jump
-- Returns {mode, speed, now, how much slower the pace became (configure; else 1)}.
local op = ARGV[2]
if op == 'init' and redis.call('EXISTS', P .. 'clock') == 0 then
  local real = real_now()
  local start = real
  if ARGV[5] ~= '' then
    start = tonumber(ARGV[5])
  end
  redis.call('HSET', P .. 'clock', 'mode', ARGV[3], 'speed', ARGV[4], 'anchor', fmt(start), 'real', fmt(real))
end
local now, mode, speed, real
local slower = 1
if op == 'configure' then
  now, mode, speed, slower = configure(ARGV[3], ARGV[4])
else
  now, mode, speed, real = clock()
end
if not now then
  return need_init()
end
if op == 'advance' then
  local seconds = tonumber(ARGV[3])
  if now + seconds > tonumber(ARGV[4]) then
    return redis.error_reply('LATEST advancing by ' .. ARGV[3] .. ' s would pass the year 9999')
  end
  now = now + seconds
  redis.call('HSET', P .. 'clock', 'anchor', fmt(now), 'real', fmt(real))
end
return {mode, fmt(speed), fmt(now), fmt(slower)}
