-- Forget every task (by moving to a new generation: one write, whatever their number), journal
-- entry, counter, run-time choice and scenario added at run time; the clock gets the configured
-- mode and speed back and keeps its reading. ARGV: prefix, mode, speed, the replica resetting.
-- Returns the old generation, whose keys `sweep` then deletes in steps (they expire anyway).
local old = GEN
redis.call('INCR', P .. 'gen')
local last = redis.call('ZRANGE', TASKS, -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('EXPIREAT', TASKS, math.ceil(tonumber(last[2])) + 1) -- gone when its last task would be
end
redis.call('UNLINK', MADE, P .. 'pushed', P .. 'default', P .. 'submissions', P .. 'journal', P .. 'added', P .. 'added:src',
  P .. 'evicted', P .. 'cb:attempts', CB .. 'dl', CB .. 'due', CB .. 'lease', FIN)
local _, _, _, slower = configure(ARGV[2], ARGV[3])
redis.call('PUBLISH', P .. 'changes', 'reset ' .. ARGV[4])
return {old, fmt(slower or 1)}
