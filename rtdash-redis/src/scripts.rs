//! The Lua scripts: each runs atomically in Redis.

/// Publishes a batch of messages. No `KEYS` (each publication names its topic; the keys
/// are built from the prefix, so the batch may span topics: standalone Redis and
/// Sentinel, not Redis Cluster). Arguments: prefix, log length, then per publication:
/// topic, seq floor, event time, head, mid, tail, cached (`1`/`0`), part count, then per
/// part: key, version, fragment. A version is 32 digits (two zero-padded 16-digit
/// numbers), so that versions compare as strings. Returns each publication's seq (0: not
/// published).
///
/// A part whose version is not above the one stored for its key is left out; when every
/// part is left out nothing is published (a replay). Otherwise the script takes the
/// topic's next sequence number (at least `floor + 1`, so that a Redis that lost its data
/// never hands out a number a client has seen), builds the frame as `head .. seq .. mid ..
/// fragments joined by ',' .. tail`, makes it the newest value of its keys (`lvc`: key →
/// `<version>:<seq>`; `msg`: seq → message and `r<seq>` → how many keys it is still the
/// newest of), appends it to the capped log and publishes it.
pub(crate) const PUBLISH: &str = r"
local prefix, loglen = ARGV[1], ARGV[2]
local out = {}
local b = 3
local last = #ARGV
while b <= last do
  local topic, floor, et = ARGV[b], tonumber(ARGV[b + 1]), ARGV[b + 2]
  local head, mid, tail = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local cached, n = ARGV[b + 6] == '1', tonumber(ARGV[b + 7])
  b = b + 8
  local t = ':{' .. topic .. '}'
  local klvc, kmsg = prefix .. ':lvc' .. t, prefix .. ':msg' .. t
  local curs = {}
  if cached and n > 0 then
    local names = {}
    for i = 1, n do names[i] = ARGV[b + (i - 1) * 3] end
    curs = redis.call('HMGET', klvc, unpack(names))
  end
  local keys, frags, vers, olds = {}, {}, {}, {}
  for i = 1, n do
    local j = b + (i - 1) * 3
    local ver, cur = ARGV[j + 1], curs[i]
    if not cur or string.sub(cur, 1, 32) < ver then
      local m = #keys + 1
      keys[m] = ARGV[j]
      vers[m] = ver
      if cur then olds[m] = string.sub(cur, 34) end
      local frag = ARGV[j + 2]
      if frag ~= '' then frags[#frags + 1] = frag end
    end
  end
  b = b + n * 3
  if n > 0 and #keys == 0 then
    out[#out + 1] = 0
  else
    local kseq = prefix .. ':seq' .. t
    local seq = redis.call('INCR', kseq)
    if seq <= floor then
      seq = floor + 1
      redis.call('SET', kseq, string.format('%d', seq))
    end
    local s = string.format('%d', seq)
    local header = ''
    if cached then header = table.concat(keys, ',') end
    local msg = s .. ' ' .. et .. ' ' .. header .. '\n' .. head .. s .. mid
      .. table.concat(frags, ',') .. tail
    if cached and #keys > 0 then
      local fields, gone = {}, {}
      for i = 1, #keys do
        local old = olds[i]
        if old then gone[old] = (gone[old] or 0) + 1 end
        fields[2 * i - 1] = keys[i]
        fields[2 * i] = vers[i] .. ':' .. s
      end
      for old, count in pairs(gone) do
        if redis.call('HINCRBY', kmsg, 'r' .. old, -count) <= 0 then
          redis.call('HDEL', kmsg, old, 'r' .. old)
        end
      end
      redis.call('HSET', klvc, unpack(fields))
      redis.call('HSET', kmsg, s, msg, 'r' .. s, #keys)
    end
    redis.pcall('XADD', prefix .. ':log' .. t, 'MAXLEN', '~', loglen, s .. '-1', 'm', msg)
    redis.call('PUBLISH', prefix .. ':ch' .. t, msg)
    out[#out + 1] = seq
  end
end
return out
";

/// Retires keys. Keys: lvc, msg. Arguments: channel, then the keys. Publishes a
/// retirement (sequence number 0) so that mirrors forget them too.
pub(crate) const RETIRE: &str = r"
for i = 2, #ARGV do
  local k = ARGV[i]
  local cur = redis.call('HGET', KEYS[1], k)
  if cur then
    local old = string.match(cur, ':(%d+)$')
    redis.call('HDEL', KEYS[1], k)
    if redis.call('HINCRBY', KEYS[2], 'r' .. old, -1) <= 0 then
      redis.call('HDEL', KEYS[2], old, 'r' .. old)
    end
  end
end
redis.call('PUBLISH', ARGV[1], '0 - ' .. table.concat(ARGV, ',', 2) .. '\n')
return 0
";

/// Reads a topic's snapshot. Keys: seq, msg, lvc. Argument: the seq floor (the reader's
/// own seq: raised to it if Redis has less, so it never goes back). Returns the seq, then
/// pairs (the keys a message is the newest of, comma-separated; the message).
pub(crate) const SNAPSHOT: &str = r"
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if seq < floor then
  seq = floor
  redis.call('SET', KEYS[1], string.format('%d', seq))
end
local out = {seq}
local by = {}
local lvc = redis.call('HGETALL', KEYS[3])
for i = 1, #lvc, 2 do
  local s = string.match(lvc[i + 1], ':(%d+)$')
  if by[s] then by[s] = by[s] .. ',' .. lvc[i] else by[s] = lvc[i] end
end
for s, ks in pairs(by) do
  local m = redis.call('HGET', KEYS[2], s)
  if m then
    out[#out + 1] = ks
    out[#out + 1] = m
  end
end
return out
";
