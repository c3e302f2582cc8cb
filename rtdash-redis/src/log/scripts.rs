//! The log's Lua scripts (each runs atomically in Redis) and how they are called.
//!
//! Every connection of the log loads all of them when it connects
//! ([`link::connect`](crate::link::connect)), then calls them by `EVALSHA`. A Redis that
//! forgot them while the connection lived (`SCRIPT FLUSH`; a restarted Redis drops the
//! connection, and the new one loads them again) answers `NOSCRIPT`: [`query`] and
//! [`query_pipe`] then load them again and retry once.

use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, FromRedisValue, RedisResult, ServerErrorKind};

/// Membership heartbeat. Keys: nodes, partitions. Arguments: node id, ttl in ms, the
/// node's number of partitions. Refuses a node whose number of partitions differs from
/// the log's (recorded by the first node); marks the node alive until Redis's clock plus
/// the ttl, forgets the nodes whose time is up, returns the live nodes.
pub(crate) const HEARTBEAT: &str = r"
local n = redis.call('SET', KEYS[2], ARGV[3], 'NX', 'GET')
if n and n ~= ARGV[3] then
  return redis.error_reply('ERR the log in Redis has ' .. n .. ' partitions, this node is configured with ' .. ARGV[3] .. ': every node of a cluster must use the same number')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

/// Takes a free lease. Keys: lease, fence. Arguments: node id, ttl in ms. Returns 0 when
/// the lease is held, else the new fencing token (the lease then holds `node:token`).
pub(crate) const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', t), 'PX', ARGV[2])
return t
";

/// Extends a lease still held. Keys: lease. Arguments: `node:token`, ttl in ms. Returns 1,
/// or 0 when the lease is gone or someone else's.
pub(crate) const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Gives a lease up. Keys: lease. Arguments: `node:token`. Returns 1, or 0 when it was no
/// longer ours (nothing done).
pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// Stores a checkpoint if its fencing token is still the partition's newest. Keys:
/// fence, ckpt, stream. Arguments: token, data, offset. Returns 0 (fenced: a successor
/// acquired the partition; nothing written) or 1. Then trims the stream to `MINID
/// offset`: the entry at the offset and every later one stay, so the stream is trimmed
/// only behind the checkpoint that still needs it.
pub(crate) const CHECKPOINT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], 'data', ARGV[2], 'offset', ARGV[3], 'token', ARGV[1],
  'at_ms', string.format('%d', ms))
if ARGV[3] ~= '0-0' then redis.call('XTRIM', KEYS[3], 'MINID', ARGV[3]) end
return 1
";

/// Every script, in the order of [`Script`].
pub(crate) const ALL: [&str; 5] = [HEARTBEAT, ACQUIRE, RENEW, RELEASE, CHECKPOINT];

/// One of the log's scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Heartbeat = 0,
    Acquire = 1,
    Renew = 2,
    Release = 3,
    Checkpoint = 4,
}

/// The SHA1s of [`ALL`] as Redis reported them when they were loaded.
#[derive(Debug, Clone)]
pub(crate) struct Shas(pub(crate) [String; 5]);

impl Shas {
    /// An `EVALSHA` of `script` on `keys`; add the arguments.
    pub(crate) fn call(&self, script: Script, keys: &[&str]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.0[script as usize]).arg(keys.len()).arg(keys);
        cmd
    }
}

fn is_noscript(e: &redis::RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// Loads every script again.
async fn reload(conn: &mut MultiplexedConnection) -> RedisResult<()> {
    for src in ALL {
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(src)
            .query_async(conn)
            .await?;
    }
    Ok(())
}

/// Runs a script call made by [`Shas::call`]; on `NOSCRIPT`, loads the scripts again and
/// retries once (the SHA1 of a script does not change).
pub(crate) async fn query<T: FromRedisValue>(
    conn: &mut MultiplexedConnection,
    cmd: &redis::Cmd,
) -> RedisResult<T> {
    match cmd.query_async(conn).await {
        Err(e) if is_noscript(&e) => {
            reload(conn).await?;
            cmd.query_async(conn).await
        }
        other => other,
    }
}

/// Like [`query`], for a pipeline of idempotent script calls (it may run twice).
pub(crate) async fn query_pipe<T: FromRedisValue>(
    conn: &mut MultiplexedConnection,
    pipe: &redis::Pipeline,
) -> RedisResult<T> {
    match pipe.query_async(conn).await {
        Err(e) if is_noscript(&e) => {
            reload(conn).await?;
            pipe.query_async(conn).await
        }
        other => other,
    }
}
