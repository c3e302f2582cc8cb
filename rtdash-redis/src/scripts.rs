//! The Lua scripts: each runs atomically in Redis.

/// Publishes one message. Keys: seq, lvc, msg, ref, log (see `wire`). Arguments: channel,
/// log length, seq floor, event time, head, mid, tail, cached (`1`/`0`), part count, then
/// per part: key, version hi, version lo, fragment.
///
/// A part whose version is not newer than the one stored for its key is left out; when
/// every part is left out nothing is published and the script returns 0 (a replay).
/// Otherwise it takes the next sequence number (at least `floor + 1`, so that a Redis
/// that lost its data never hands out a number a client has seen), builds the frame as
/// `head .. seq .. mid .. fragments joined by ',' .. tail`, makes it the newest value of
/// its keys, appends it to the capped log, publishes it, and returns its seq.
pub(crate) const PUBLISH: &str = r"
local n = tonumber(ARGV[9])
local cached = ARGV[8] == '1'
local keys, frags, vers = {}, {}, {}
for i = 0, n - 1 do
  local b = 10 + i * 4
  local k, hi, lo = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  local newer = true
  if cached then
    local cur = redis.call('HGET', KEYS[2], k)
    if cur then
      local chi, clo = string.match(cur, '^(-?%d+):(-?%d+):')
      chi, clo = tonumber(chi), tonumber(clo)
      if hi < chi or (hi == chi and lo <= clo) then newer = false end
    end
  end
  if newer then
    keys[#keys + 1] = k
    vers[#vers + 1] = ARGV[b + 1] .. ':' .. ARGV[b + 2]
    if ARGV[b + 3] ~= '' then frags[#frags + 1] = ARGV[b + 3] end
  end
end
if n > 0 and #keys == 0 then return 0 end
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[3])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], string.format('%d', seq))
end
local s = string.format('%d', seq)
local frame = ARGV[5] .. s .. ARGV[6] .. table.concat(frags, ',') .. ARGV[7]
local header = ''
if cached then header = table.concat(keys, ',') end
local msg = s .. ' ' .. ARGV[4] .. ' ' .. header .. '\n' .. frame
if cached and #keys > 0 then
  for i, k in ipairs(keys) do
    local cur = redis.call('HGET', KEYS[2], k)
    if cur then
      local old = string.match(cur, ':(%d+)$')
      if redis.call('HINCRBY', KEYS[4], old, -1) <= 0 then
        redis.call('HDEL', KEYS[4], old)
        redis.call('HDEL', KEYS[3], old)
      end
    end
    redis.call('HSET', KEYS[2], k, vers[i] .. ':' .. s)
  end
  redis.call('HSET', KEYS[3], s, msg)
  redis.call('HSET', KEYS[4], s, #keys)
end
redis.pcall('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], s .. '-1', 'm', msg)
redis.call('PUBLISH', ARGV[1], msg)
return seq
";

/// Retires keys. Keys: lvc, msg, ref. Arguments: channel, then the keys. Publishes a
/// retirement (sequence number 0) so that mirrors forget them too.
pub(crate) const RETIRE: &str = r"
for i = 2, #ARGV do
  local k = ARGV[i]
  local cur = redis.call('HGET', KEYS[1], k)
  if cur then
    local old = string.match(cur, ':(%d+)$')
    redis.call('HDEL', KEYS[1], k)
    if redis.call('HINCRBY', KEYS[3], old, -1) <= 0 then
      redis.call('HDEL', KEYS[3], old)
      redis.call('HDEL', KEYS[2], old)
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
