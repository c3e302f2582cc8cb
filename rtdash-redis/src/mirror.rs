//! The receiving side: a [`Mirror`] keeps a local mirrored hub in step with the topics'
//! state in Redis, for the topics local clients subscribe to.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};
use rtdash_fanout::{Cached, HubConfig, Interest, Key, MirrorOutcome, Stamped};
use rtdash_transport::{Frame, FrameHub, Topic};
use tokio::sync::{Notify, mpsc};

use crate::link::{self, Backoff, Counters};
use crate::wire::{Message, Names};
use crate::{BackplaneConfig, BackplaneError, scripts};

/// A key type the backplane can carry: it has a name without separators (`,`, space,
/// `:`, line breaks) and can be read back from it.
pub trait BackplaneKey: Key {
    /// The key's name in Redis.
    fn to_name(&self) -> String;
    /// The key a name stands for; `None` for a name this type never writes.
    fn from_name(name: &str) -> Option<Self>;
}

/// Turns a cached frame into its stale form, for while Redis is unreachable.
pub type StaleMarker = Arc<dyn Fn(&Frame) -> Frame + Send + Sync>;

/// Topics whose local interest changed, for the mirror's task.
#[derive(Default)]
struct Interests {
    dirty: Mutex<HashSet<Topic>>,
    wake: Notify,
}

/// Keeps a local [`FrameHub`] in step with Redis (see the [crate](crate) documentation):
/// for each topic with local subscribers it subscribes the topic's channel, gives the
/// subscribers the snapshot held in Redis, then every message in sequence; it catches up
/// from the topic's log after a lost message or a reconnection, and resynchronises with
/// a fresh snapshot when the log no longer reaches back far enough.
///
/// Made by [`Backplane::mirror`](crate::Backplane::mirror); runs once
/// [`spawn`](Self::spawn)ed.
pub struct Mirror<K: BackplaneKey> {
    hub: FrameHub<K>,
    interests: Arc<Interests>,
    client: redis::Client,
    config: BackplaneConfig,
    counters: Arc<Counters>,
    stale: Option<StaleMarker>,
}

impl<K: BackplaneKey> std::fmt::Debug for Mirror<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("node_id", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

impl<K: BackplaneKey> Mirror<K> {
    pub(crate) fn new(
        client: redis::Client,
        config: BackplaneConfig,
        hub_config: HubConfig,
        counters: Arc<Counters>,
    ) -> Self {
        let interests = Arc::new(Interests::default());
        let observer = {
            let interests = Arc::clone(&interests);
            move |topic: &Topic, _: Interest| {
                interests
                    .dirty
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(Arc::clone(topic));
                interests.wake.notify_one();
            }
        };
        counters.has_mirror.store(true, Ordering::Release);
        Self {
            hub: FrameHub::mirrored(hub_config, observer),
            interests,
            client,
            config,
            counters,
            stale: None,
        }
    }

    /// The mirrored hub: give it to the transports that serve local clients.
    #[must_use]
    pub fn hub(&self) -> &FrameHub<K> {
        &self.hub
    }

    /// Sets how cached frames are marked stale while Redis has been unreachable for
    /// [`stale_after`](crate::BackplaneConfig::stale_after): every local subscriber then
    /// gets a snapshot of the marked frames (same seq). Without a marker, values stay as
    /// they were.
    #[must_use]
    pub fn with_stale_marker(mut self, marker: StaleMarker) -> Self {
        self.stale = Some(marker);
        self
    }

    /// Starts the mirror's task on the current tokio runtime; it runs until the hub's
    /// last other handle is dropped... or forever: abort the handle to stop it.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let mut backoff = Backoff::new(&self.config);
        let mut down_since = Instant::now();
        let mut marked_stale = false;
        loop {
            let (tx, rx) = mpsc::channel::<PushInfo>(self.config.max_inbox);
            let overflow = Arc::new(AtomicBool::new(false));
            let sender = {
                let overflow = Arc::clone(&overflow);
                let counters = Arc::clone(&self.counters);
                move |info: PushInfo| -> Result<(), std::convert::Infallible> {
                    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(info) {
                        overflow.store(true, Ordering::Release);
                        Counters::add(&counters.inbox_dropped, 1);
                    }
                    Ok(())
                }
            };
            let config = link::connection_config(&self.config).set_push_sender(sender);
            let err = match link::connect(&self.client, config, [scripts::SNAPSHOT]).await {
                Ok((conn, [sha])) => {
                    backoff.succeed();
                    self.counters.breaker_open.store(false, Ordering::Release);
                    let names = Names::new(&self.config.prefix);
                    let mut session = Session {
                        mirror: &self,
                        probe_channel: names.probe(&self.config.node_id),
                        names,
                        conn,
                        sha,
                        rx,
                        overflow,
                        subscribed: HashSet::new(),
                        probe_subscribed: false,
                        probe: None,
                        last_message: Instant::now(),
                    };
                    // Clears `marked_stale` once every topic has its fresh snapshot: a
                    // session that fails before that leaves the values marked, and the
                    // next one resynchronises them.
                    let e = session.serve(&mut marked_stale).await;
                    self.counters.subscriptions.store(0, Ordering::Relaxed);
                    down_since = Instant::now();
                    e
                }
                Err(e) => e,
            };
            self.counters.mirror_up.store(false, Ordering::Release);
            Counters::add(&self.counters.reconnects, 1);
            let (wait, open) = backoff.fail();
            self.counters.breaker_open.store(open, Ordering::Release);
            tracing::warn!(error = %err, retry_in = ?wait, "redis backplane mirror: Redis unreachable");
            let until = Instant::now() + wait;
            // Mark values stale once Redis has been gone for `stale_after`, even while
            // waiting out a long backoff.
            if !marked_stale {
                let stale_at = down_since + self.config.stale_after;
                if stale_at < until {
                    tokio::time::sleep_until(stale_at.into()).await;
                    marked_stale = self.mark_stale();
                }
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// Marks every cached frame of every held topic stale; returns whether it did.
    fn mark_stale(&self) -> bool {
        let Some(marker) = &self.stale else {
            return false;
        };
        for topic in self.hub.topics() {
            self.hub.map_cached(&topic, |f| marker(f));
        }
        Counters::add(&self.counters.stale_marks, 1);
        true
    }
}

/// The frame a message carries, tagged with its event time (its bytes as they came).
fn frame_of(topic: &Topic, m: &Message) -> Result<Frame, BackplaneError> {
    Ok(Frame::try_from_bytes(m.frame.clone())
        .map_err(|e| BackplaneError::Protocol(format!("frame of {topic}: {e}")))?
        .with_event_time(m.event_time))
}

/// One connection's life.
struct Session<'m, K: BackplaneKey> {
    mirror: &'m Mirror<K>,
    names: Names,
    /// This node's probe channel (compared with every message's channel).
    probe_channel: String,
    conn: MultiplexedConnection,
    sha: String,
    rx: mpsc::Receiver<PushInfo>,
    overflow: Arc<AtomicBool>,
    subscribed: HashSet<Topic>,
    probe_subscribed: bool,
    /// The probe in flight: its nonce and when it was sent.
    probe: Option<(u64, Instant)>,
    last_message: Instant,
}

impl<K: BackplaneKey> Session<'_, K> {
    /// Serves until the connection fails; returns why. `resync_all` (the values are
    /// marked stale) is cleared once every held topic has its fresh snapshot.
    async fn serve(&mut self, resync_all: &mut bool) -> BackplaneError {
        let counters = Arc::clone(&self.mirror.counters);
        // Every topic held now: subscribe, then catch up (or take a fresh snapshot when
        // the values were marked stale or the topic waits for its first).
        for topic in self.mirror.hub.topics() {
            if let Err(e) = self.subscribe(&topic).await {
                return e;
            }
            let r = if *resync_all || self.mirror.hub.is_pending(&topic) {
                self.resync(&topic).await
            } else {
                self.catch_up(&topic).await
            };
            if let Err(e) = r {
                return e;
            }
        }
        *resync_all = false;
        counters.mirror_up.store(true, Ordering::Release);
        let mut tick = tokio::time::interval(self.mirror.config.probe_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                biased;
                info = self.rx.recv() => match info {
                    Some(info) => self.on_push(info).await,
                    None => Err(BackplaneError::Protocol("push channel closed".into())),
                },
                () = self.mirror.interests.wake.notified() => self.reconcile().await,
                _ = tick.tick() => self.probe().await,
            };
            if let Err(e) = step {
                return e;
            }
            if self.overflow.swap(false, Ordering::AcqRel) {
                // Messages were dropped on the floor: each topic catches up from its log.
                let topics: Vec<Topic> = self.subscribed.iter().cloned().collect();
                for t in topics {
                    if let Err(e) = self.catch_up(&t).await {
                        return e;
                    }
                }
            }
        }
    }

    async fn on_push(&mut self, info: PushInfo) -> Result<(), BackplaneError> {
        match info.kind {
            PushKind::Disconnection => Err(BackplaneError::Protocol("disconnected".into())),
            PushKind::Message => {
                let mut data = info.data.into_iter();
                let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                    return Ok(());
                };
                let (Value::BulkString(channel), Value::BulkString(payload)) = (channel, payload)
                else {
                    return Ok(());
                };
                self.last_message = Instant::now();
                let channel = String::from_utf8_lossy(&channel);
                if channel == self.probe_channel {
                    let nonce: Option<u64> = std::str::from_utf8(&payload)
                        .ok()
                        .and_then(|s| s.parse().ok());
                    if let (Some((sent, at)), Some(n)) = (self.probe, nonce)
                        && sent == n
                    {
                        link::record_rtt(&self.mirror.counters, at.elapsed());
                        self.probe = None;
                    }
                    return Ok(());
                }
                let Some(topic) = self.names.topic_of(&channel) else {
                    return Ok(());
                };
                let topic: Topic = Arc::from(topic);
                Counters::add(&self.mirror.counters.received, 1);
                match Message::parse(Bytes::from(payload)) {
                    Ok(m) => self.apply(&topic, m).await,
                    Err(e) => {
                        tracing::warn!(error = %e, topic = %topic, "redis backplane: message dropped");
                        Ok(())
                    }
                }
            }
            _ => Ok(()),
        }
    }

    /// Applies one message of `topic`; catches up on a gap.
    async fn apply(&mut self, topic: &Topic, m: Message) -> Result<(), BackplaneError> {
        let hub = &self.mirror.hub;
        if m.seq == 0 {
            let gone: HashSet<&str> = m.key_list().collect();
            hub.retain_cached(topic, |k| !gone.contains(k.to_name().as_str()));
            return Ok(());
        }
        let frame = frame_of(topic, &m)?;
        let keys: Vec<K> = m.key_list().filter_map(K::from_name).collect();
        match hub.publish_at(topic, keys, m.seq, frame) {
            MirrorOutcome::Duplicate => Counters::add(&self.mirror.counters.duplicates, 1),
            MirrorOutcome::Gap { .. } => {
                Counters::add(&self.mirror.counters.gaps, 1);
                self.catch_up(topic).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Brings a held topic up to Redis's seq from the topic's log, or with a fresh
    /// snapshot when the log does not reach back far enough.
    async fn catch_up(&mut self, topic: &Topic) -> Result<(), BackplaneError> {
        const PAGE: u64 = 512;
        let names = &self.names;
        let Some(mut local) = self.mirror.hub.seq(topic) else {
            return Ok(());
        };
        if self.mirror.hub.is_pending(topic) {
            return self.resync(topic).await;
        }
        let remote: Option<u64> = redis::cmd("GET")
            .arg(names.key("seq", topic))
            .query_async(&mut self.conn)
            .await?;
        let remote = remote.unwrap_or(0);
        if remote <= local {
            if remote < local {
                // Redis lost data: the snapshot raises its seq to ours.
                return self.resync(topic).await;
            }
            return Ok(());
        }
        let stored = names.key("msg", topic);
        let mut applied = 0u64;
        while local < remote {
            let from = local + 1;
            let to = remote.min(local + PAGE);
            let reply: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
                .arg(&stored)
                .arg((from..=to).collect::<Vec<u64>>())
                .query_async(&mut self.conn)
                .await?;
            for (seq, raw) in (from..=to).zip(reply) {
                let Some(raw) = raw else {
                    // The log no longer reaches back this far: take a snapshot.
                    return self.resync(topic).await;
                };
                let m = Message::parse(Bytes::from(raw))?;
                let frame = frame_of(topic, &m)?;
                let keys: Vec<K> = m.key_list().filter_map(K::from_name).collect();
                match self.mirror.hub.publish_at(topic, keys, seq, frame) {
                    MirrorOutcome::Published | MirrorOutcome::Duplicate => {}
                    MirrorOutcome::NotHeld => return Ok(()),
                    _ => return self.resync(topic).await,
                }
                applied += 1;
            }
            local = to;
        }
        if applied > 0 {
            Counters::add(&self.mirror.counters.catchups, 1);
        }
        // Retirements travel on the channel only: drop the cached keys Redis no longer
        // holds, in case one was missed.
        let held: Vec<String> = redis::cmd("HKEYS")
            .arg(self.names.key("lvc", topic))
            .query_async(&mut self.conn)
            .await?;
        let held: HashSet<String> = held.into_iter().collect();
        self.mirror
            .hub
            .retain_cached(topic, |k| held.contains(&k.to_name()));
        Ok(())
    }

    /// Replaces a held topic's state by the snapshot in Redis.
    async fn resync(&mut self, topic: &Topic) -> Result<(), BackplaneError> {
        let hub = &self.mirror.hub;
        let floor = hub.seq(topic).unwrap_or(0);
        let names = &self.names;
        let reply: Vec<Value> = redis::cmd("EVALSHA")
            .arg(&self.sha)
            .arg(3)
            .arg(names.key("seq", topic))
            .arg(names.key("msg", topic))
            .arg(names.key("lvc", topic))
            .arg(floor)
            .query_async(&mut self.conn)
            .await?;
        let mut it = reply.into_iter();
        let seq = match it.next() {
            Some(Value::Int(s)) => u64::try_from(s).unwrap_or(0),
            other => {
                return Err(BackplaneError::Protocol(format!(
                    "snapshot of {topic}: no seq ({other:?})"
                )));
            }
        };
        let mut cached = Vec::new();
        while let (Some(keys), Some(msg)) = (it.next(), it.next()) {
            let (Value::BulkString(keys), Value::BulkString(msg)) = (keys, msg) else {
                continue;
            };
            let m = Message::parse(Bytes::from(msg))?;
            let keys = String::from_utf8_lossy(&keys);
            cached.push(Cached {
                keys: keys.split(',').filter_map(K::from_name).collect(),
                stamped: Stamped {
                    seq: m.seq,
                    msg: frame_of(topic, &m)?,
                },
            });
        }
        hub.reset(topic, seq, cached);
        Counters::add(&self.mirror.counters.resyncs, 1);
        Ok(())
    }

    async fn subscribe(&mut self, topic: &Topic) -> Result<(), BackplaneError> {
        if self.subscribed.contains(topic) {
            return Ok(());
        }
        if !self.probe_subscribed {
            self.conn.subscribe(&self.probe_channel).await?;
            self.probe_subscribed = true;
        }
        self.conn.subscribe(self.names.channel(topic)).await?;
        self.subscribed.insert(Arc::clone(topic));
        self.mirror
            .counters
            .subscriptions
            .store(self.subscribed.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn unsubscribe(&mut self, topic: &Topic) -> Result<(), BackplaneError> {
        if self.subscribed.remove(topic) {
            self.conn.unsubscribe(self.names.channel(topic)).await?;
        }
        if self.subscribed.is_empty() && self.probe_subscribed {
            self.conn.unsubscribe(&self.probe_channel).await?;
            self.probe_subscribed = false;
            self.probe = None;
        }
        self.mirror
            .counters
            .subscriptions
            .store(self.subscribed.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Subscribes the topics that gained local interest, unsubscribes those that lost
    /// it.
    async fn reconcile(&mut self) -> Result<(), BackplaneError> {
        let dirty: Vec<Topic> = {
            let mut d = self
                .mirror
                .interests
                .dirty
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            d.drain().collect()
        };
        for topic in dirty {
            let held = self.mirror.hub.seq(&topic).is_some();
            if held {
                if !self.subscribed.contains(&topic) {
                    self.subscribe(&topic).await?;
                    self.resync(&topic).await?;
                } else if self.mirror.hub.is_pending(&topic) {
                    self.resync(&topic).await?;
                }
            } else {
                self.unsubscribe(&topic).await?;
            }
        }
        Ok(())
    }

    /// Checks the connection: a `PING` round trip always; on a subscription that has
    /// been quiet for a probe interval, a message through this node's probe channel,
    /// which must come back within the probe timeout.
    async fn probe(&mut self) -> Result<(), BackplaneError> {
        let config = &self.mirror.config;
        if let Some((_, at)) = self.probe
            && at.elapsed() > config.probe_timeout
        {
            Counters::add(&self.mirror.counters.probe_failures, 1);
            return Err(BackplaneError::Protocol(
                "liveness probe not delivered: the subscription is wedged".into(),
            ));
        }
        let started = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut self.conn).await?;
        link::record_rtt(&self.mirror.counters, started.elapsed());
        let quiet = self.last_message.elapsed() >= config.probe_interval;
        if self.probe_subscribed && self.probe.is_none() && quiet {
            let nonce = u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO)
                    .as_nanos()
                    & u128::from(u64::MAX),
            )
            .unwrap_or(1);
            let _: i64 = redis::cmd("PUBLISH")
                .arg(&self.probe_channel)
                .arg(nonce)
                .query_async(&mut self.conn)
                .await?;
            self.probe = Some((nonce, Instant::now()));
        }
        Ok(())
    }
}
