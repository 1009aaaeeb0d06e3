-- Append journal entries (JSON, one per argument after the first two) to the capped stream,
-- numbering them. ARGV: prefix, the journal size, entries... Returns the last number and how many
-- entries the bound pushed out.
local n = #ARGV - 2
local before = redis.call('XLEN', P .. 'journal')
local last = redis.call('INCRBY', P .. 'journal:seq', n)
for i = 3, #ARGV do
  redis.call('XADD', P .. 'journal', 'MAXLEN', '~', ARGV[2], '*', 'i', last - n + i - 2, 'e', ARGV[i])
end
return {last, before + n - redis.call('XLEN', P .. 'journal')}
