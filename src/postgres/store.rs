//! [`PostgresStore`]: dashboards (with their alert rules) in one PostgreSQL table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator as _;

use crate::store::{DashboardStore, LoadProblem, Loaded, StoreChange};
use crate::{AlertRecord, DashboardDoc, DashboardId, Error};

/// Settings of a [`PostgresStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresStoreConfig {
    /// The table (created if missing): letters, digits and `_`, not starting with a
    /// digit, at most 63 bytes (default `rtdash_dashboards`).
    pub table: String,
    /// How long a call (connecting included) may take before it fails (default 10 s).
    pub timeout: Duration,
}

impl Default for PostgresStoreConfig {
    fn default() -> Self {
        Self {
            table: "rtdash_dashboards".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl PostgresStoreConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        super::check_table("table", &self.table)?;
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(3600) {
            return Err(Error::InvalidConfig {
                field: "timeout",
                reason: format!("{:?}: more than 0 and at most 1 h", self.timeout),
            });
        }
        Ok(())
    }
}

/// What the store's thread is asked.
enum Call {
    LoadAll,
    LoadOne(String),
    Put(String, String),
    Delete(String),
    /// Upserts alert records `(id, dashboard, started_at ms, JSON)`, then keeps the newest
    /// `limit` rows.
    SaveAlerts(Vec<(String, String, i64, String)>, i64),
    /// The newest `limit` alert records, as JSON.
    LoadAlerts(i64),
}

/// What the store's thread answers.
enum Answer {
    Loaded(Loaded),
    Records(Vec<String>),
}

type Reply = mpsc::SyncSender<Result<Answer, Error>>;

/// A [`DashboardStore`] in a PostgreSQL table. See the [module docs](super).
pub struct PostgresStore {
    calls: Mutex<mpsc::Sender<(Call, Reply)>>,
    /// Where, for messages: `postgres://host:port/db/table` (no password).
    place: String,
    timeout: Duration,
    /// What the listener of [`watch`](DashboardStore::watch) needs.
    config: postgres::Config,
    table: String,
    /// Tells the running listener, if any, to stop.
    listener: Mutex<Option<Arc<AtomicBool>>>,
    /// How many alert records the table keeps (set by the engine's load).
    alert_limit: AtomicUsize,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(stop) = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            stop.store(true, Ordering::Release);
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// The store's statements, made once from its table name.
struct Sql {
    create: String,
    select: String,
    select_one: String,
    upsert: String,
    delete: String,
    listen: String,
    alerts_upsert: String,
    alerts_select: String,
    alerts_trim: String,
}

/// The table of the alert history beside the dashboards' table `table`.
fn alerts_table(table: &str) -> String {
    // At most 63 bytes, as PostgreSQL's identifiers (the table name is ASCII).
    format!("{}_alerts", &table[..table.len().min(56)])
}

/// The channel the store's writes notify: the table's name in lower case (as PostgreSQL
/// folds the unquoted table name).
fn channel(table: &str) -> String {
    table.to_ascii_lowercase()
}

impl Sql {
    fn new(table: &str) -> Self {
        // `check_table` allows letters, digits and `_` only: safe in SQL as is.
        let channel = channel(table);
        let alerts = alerts_table(table);
        Self {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, doc jsonb NOT NULL, \
                 updated_at timestamptz NOT NULL DEFAULT now()); \
                 CREATE TABLE IF NOT EXISTS {alerts} (id text PRIMARY KEY, \
                 dashboard_id text NOT NULL, started_at bigint NOT NULL, record jsonb NOT NULL); \
                 CREATE INDEX IF NOT EXISTS {alerts}_started ON {alerts} (started_at)"
            ),
            alerts_upsert: format!(
                "INSERT INTO {alerts} (id, dashboard_id, started_at, record) \
                 VALUES ($1, $2, $3, $4::text::jsonb) \
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record"
            ),
            alerts_select: format!(
                "SELECT record::text FROM {alerts} ORDER BY started_at DESC, id DESC LIMIT $1"
            ),
            alerts_trim: format!(
                "DELETE FROM {alerts} WHERE started_at <= (SELECT started_at FROM {alerts} \
                 ORDER BY started_at DESC OFFSET $1 LIMIT 1)"
            ),
            select: format!("SELECT id, doc::text FROM {table} ORDER BY id"),
            select_one: format!("SELECT doc::text FROM {table} WHERE id = $1"),
            // The notification is part of the statement's transaction: sent if and only if
            // the write commits.
            upsert: format!(
                "WITH w AS (INSERT INTO {table} (id, doc) VALUES ($1, $2::text::jsonb) \
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at = now() \
                 RETURNING id) SELECT pg_notify('{channel}', id) FROM w"
            ),
            delete: format!(
                "WITH d AS (DELETE FROM {table} WHERE id = $1 RETURNING id) \
                 SELECT pg_notify('{channel}', id) FROM d"
            ),
            listen: format!("LISTEN \"{channel}\""),
        }
    }
}

/// The store's thread: one connection, made again when lost.
struct Worker {
    config: postgres::Config,
    sql: Sql,
    /// Where, for messages (see [`PostgresStore`]).
    place: String,
    client: Option<postgres::Client>,
}

impl Worker {
    fn run(&mut self, call: &Call) -> Result<Answer, Error> {
        let Self {
            config,
            sql,
            place,
            client,
        } = self;
        let fail = |action: &'static str, id: Option<&str>, e: &postgres::Error| Error::Store {
            action,
            path: PathBuf::from(match id {
                Some(id) => format!("{place}/{id}"),
                None => place.clone(),
            }),
            reason: e.to_string(),
        };
        let conn = connection(client, config, &sql.create);
        let loaded = match call {
            Call::SaveAlerts(rows, limit) => {
                let saved = conn.and_then(|c| {
                    let mut tx = c.transaction()?;
                    for (id, dash, started, json) in rows {
                        tx.execute(&sql.alerts_upsert, &[id, dash, started, json])?;
                    }
                    tx.execute(&sql.alerts_trim, &[limit])?;
                    tx.commit()
                });
                return saved
                    .map(|()| Answer::Records(Vec::new()))
                    .map_err(|e| fail("write alert records", None, &e));
            }
            Call::LoadAlerts(limit) => {
                return conn
                    .and_then(|c| c.query(&sql.alerts_select, &[limit]))
                    .map(|rows| Answer::Records(rows.iter().map(|r| r.get(0)).collect()))
                    .map_err(|e| fail("read alert records", None, &e));
            }
            Call::LoadAll => conn
                .and_then(|c| c.query(&sql.select, &[]))
                .map(|rows| load(&rows, place))
                .map_err(|e| fail("list", None, &e)),
            Call::LoadOne(id) => conn
                .and_then(|c| c.query_opt(&sql.select_one, &[id]))
                .map(|row| {
                    let mut loaded = Loaded::default();
                    if let Some(row) = row {
                        match decode(id, &row.get::<_, String>(0), place) {
                            Ok(doc) => loaded.dashboards.push(doc),
                            Err(problem) => loaded.problems.push(problem),
                        }
                    }
                    loaded
                })
                .map_err(|e| fail("read", Some(id), &e)),
            Call::Put(id, json) => conn
                .and_then(|c| c.execute(&sql.upsert, &[id, json]))
                .map(|_| Loaded::default())
                .map_err(|e| fail("write", Some(id), &e)),
            Call::Delete(id) => conn
                .and_then(|c| c.execute(&sql.delete, &[id]))
                .map(|_| Loaded::default())
                .map_err(|e| fail("remove", Some(id), &e)),
        };
        loaded.map(Answer::Loaded)
    }
}

/// The connection in `slot`; a new one (and the table, with `create`, if missing) when
/// there is none or it was lost (PostgreSQL restarted, the session ended).
fn connection<'a>(
    slot: &'a mut Option<postgres::Client>,
    config: &postgres::Config,
    create: &str,
) -> Result<&'a mut postgres::Client, postgres::Error> {
    let client = match slot.take() {
        Some(c) if !c.is_closed() => c,
        _ => {
            let mut client = config.connect(postgres::NoTls)?;
            client.batch_execute(create)?;
            client
        }
    };
    Ok(slot.insert(client))
}

/// The rows as documents; rows that do not decode are problems, not failures.
fn load(rows: &[postgres::Row], place: &str) -> Loaded {
    let mut loaded = Loaded::default();
    for row in rows {
        let id: String = row.get(0);
        let text: String = row.get(1);
        match decode(&id, &text, place) {
            Ok(doc) => loaded.dashboards.push(doc),
            Err(problem) => loaded.problems.push(problem),
        }
    }
    loaded
}

/// The document of row `id`, or what is wrong with it.
fn decode(id: &str, text: &str, place: &str) -> Result<DashboardDoc, LoadProblem> {
    let problem = |reason| LoadProblem {
        path: PathBuf::from(format!("{place}/{id}")),
        reason,
    };
    match DashboardDoc::from_json(text.as_bytes()) {
        Ok(doc) if doc.id() == id => Ok(doc),
        Ok(doc) => Err(problem(format!("the row's document has id {:?}", doc.id()))),
        Err(e) => Err(problem(e.to_string())),
    }
}

/// How long the listener waits for a notification before it looks at its stop flag.
const LISTEN_POLL: Duration = Duration::from_millis(200);

/// The longest pause between two attempts to connect the listener again.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Why the listener stopped following a connection.
enum Ended {
    /// The store or the engine is gone.
    Stop,
    /// The connection was lost: connect again, and resync.
    Lost(String),
}

/// The thread behind [`PostgresStore::watch`]: a connection of its own that `LISTEN`s to
/// the store's channel and reports each notified id; after a lost connection, the ids
/// whose rows changed since its last look.
struct Listener {
    config: postgres::Config,
    sql: Sql,
    place: String,
    changes: mpsc::Sender<StoreChange>,
    stop: Arc<AtomicBool>,
    /// The document text of every row when the table was last read (`None` before the
    /// first connection).
    seen: Option<BTreeMap<String, String>>,
    /// Told when the first connection listens and has read the table.
    ready: Option<mpsc::SyncSender<()>>,
}

impl Listener {
    fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        let mut down_since: Option<Instant> = None;
        while !self.stopped() {
            let mut slot = None;
            let ended = match connection(&mut slot, &self.config, &self.sql.create)
                .and_then(|c| c.batch_execute(&self.sql.listen).map(|()| c))
                .map_err(|e| e.to_string())
            {
                Ok(client) => {
                    backoff = Duration::from_millis(50);
                    if let Some(since) = down_since.take() {
                        tracing::info!(
                            place = %self.place,
                            after = ?since.elapsed(),
                            "dashboard store: listening again; resyncing"
                        );
                    }
                    match self.resync(client) {
                        Ok(()) => self.follow(client),
                        Err(ended) => ended,
                    }
                }
                Err(e) => Ended::Lost(e),
            };
            match ended {
                Ended::Stop => return,
                Ended::Lost(reason) => {
                    if down_since.is_none() {
                        tracing::warn!(
                            place = %self.place,
                            %reason,
                            "dashboard store: not listening for changes made elsewhere; \
                             connecting again"
                        );
                        down_since = Some(Instant::now());
                    }
                    self.pause(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps `d`, waking early when told to stop.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn send(&self, id: &str) -> Result<(), Ended> {
        let Ok(id) = DashboardId::new(id) else {
            // Not written by a store (a hand-made row or notification): no engine can hold
            // a dashboard of that id, so there is nothing to change.
            tracing::warn!(
                place = %self.place,
                id,
                "dashboard store: ignored a row or notification whose id is not a dashboard id"
            );
            return Ok(());
        };
        self.changes
            .send(StoreChange { id })
            .map_err(|_| Ended::Stop)
    }

    /// Reads the whole table: the first time, what the watch starts from; after a lost
    /// connection, the ids whose rows differ from the last read are reported (they may
    /// have changed while no notification could arrive).
    fn resync(&mut self, client: &mut postgres::Client) -> Result<(), Ended> {
        let rows = client
            .query(&self.sql.select, &[])
            .map_err(|e| Ended::Lost(e.to_string()))?;
        let now: BTreeMap<String, String> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        // The first time, with `watch` still waiting: the engine loads the table after
        // this, so there is nothing to report. If `watch` gave up waiting, every row is
        // reported (the engine ignores those it holds already).
        let quiet = self.ready.take().is_some_and(|r| r.try_send(()).is_ok());
        let before = self.seen.take().unwrap_or_default();
        if !quiet {
            let changed = now
                .iter()
                .filter(|(id, text)| before.get(*id) != Some(*text))
                .map(|(id, _)| id);
            let deleted = before.keys().filter(|id| !now.contains_key(*id));
            for id in changed.chain(deleted) {
                self.send(id)?;
            }
        }
        self.seen = Some(now);
        Ok(())
    }

    /// Reports every notified id until the connection is lost or the watch ends.
    fn follow(&mut self, client: &mut postgres::Client) -> Ended {
        loop {
            if self.stopped() {
                return Ended::Stop;
            }
            let next = client.notifications().timeout_iter(LISTEN_POLL).next();
            match next {
                Ok(Some(n)) => {
                    if let Err(ended) = self.send(n.payload()) {
                        return ended;
                    }
                }
                Ok(None) if client.is_closed() => {
                    return Ended::Lost("the connection was closed".to_owned());
                }
                Ok(None) => {}
                Err(e) => return Ended::Lost(e.to_string()),
            }
        }
    }
}

impl PostgresStore {
    /// Connects to the PostgreSQL at `url` (`postgres://user[:password]@host[:port]/db`,
    /// or the `key=value` form), creates the table if missing, and starts the store's
    /// thread.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a bad setting or URL (`url`, never showing the
    /// password); [`Error::Store`] (`connect`) when the server cannot be reached or
    /// refuses, within the timeout.
    pub fn connect(url: &str, config: PostgresStoreConfig) -> Result<Self, Error> {
        config.validate()?;
        let (mut pg, base) = super::parse_url(url)?;
        pg.connect_timeout(config.timeout);
        let place = format!("{base}/{}", config.table);
        let listen_config = pg.clone();
        let (tx, rx) = mpsc::channel::<(Call, Reply)>();
        let mut worker = Worker {
            config: pg,
            sql: Sql::new(&config.table),
            place: place.clone(),
            client: None,
        };
        std::thread::Builder::new()
            .name("rtdash-postgres-store".to_owned())
            .spawn(move || {
                while let Ok((call, reply)) = rx.recv() {
                    let _ = reply.send(worker.run(&call));
                }
            })
            .map_err(|e| Error::Store {
                action: "connect",
                path: PathBuf::from(&place),
                reason: format!("cannot start the store's thread: {e}"),
            })?;
        let store = Self {
            calls: Mutex::new(tx),
            place,
            timeout: config.timeout,
            config: listen_config,
            table: config.table,
            listener: Mutex::new(None),
            alert_limit: AtomicUsize::new(10_000),
        };
        // Connect now, so that a wrong URL or a server that is down shows at start.
        store.call(Call::LoadAll, "connect").map(|_| store)
    }

    fn call(&self, call: Call, action: &'static str) -> Result<Loaded, Error> {
        match self.ask(call, action)? {
            Answer::Loaded(l) => Ok(l),
            Answer::Records(_) => Ok(Loaded::default()),
        }
    }

    fn ask(&self, call: Call, action: &'static str) -> Result<Answer, Error> {
        let fail = |reason: String| Error::Store {
            action,
            path: PathBuf::from(&self.place),
            reason,
        };
        let (reply, answer) = mpsc::sync_channel(1);
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send((call, reply))
            .map_err(|_| fail("the store's thread stopped".to_owned()))?;
        match answer.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(fail(format!(
                "no answer from PostgreSQL within {:?}",
                self.timeout
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(fail("the store's thread stopped".to_owned()))
            }
        }
    }
}

impl DashboardStore for PostgresStore {
    fn load_all(&self) -> Result<Loaded, Error> {
        self.call(Call::LoadAll, "list")
    }

    fn put(&self, doc: &DashboardDoc) -> Result<(), Error> {
        self.call(Call::Put(doc.id().to_owned(), doc.to_json()), "write")
            .map(|_| ())
    }

    fn delete(&self, id: &DashboardId) -> Result<(), Error> {
        self.call(Call::Delete(id.as_str().to_owned()), "remove")
            .map(|_| ())
    }

    fn load_one(&self, id: &DashboardId) -> Result<Loaded, Error> {
        self.call(Call::LoadOne(id.as_str().to_owned()), "read")
    }

    /// Upserts the records into the table `<table>_alerts` (one row per record, its JSON in
    /// `record`) in one transaction, and keeps the newest
    /// [`alert_records`](crate::EngineConfig::alert_records) rows. Nodes sharing the store
    /// share the table: each loads the newest records of all of them at start.
    fn save_alert_records(&self, records: &[AlertRecord]) -> Result<(), Error> {
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            let json = serde_json::to_string(r).map_err(|e| Error::Store {
                action: "encode alert record",
                path: PathBuf::from(&self.place),
                reason: e.to_string(),
            })?;
            rows.push((
                r.id.to_string(),
                r.dashboard_id.clone(),
                r.started_at.as_millis(),
                json,
            ));
        }
        let limit = i64::try_from(self.alert_limit.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        self.ask(Call::SaveAlerts(rows, limit), "write alert records")
            .map(|_| ())
    }

    /// The newest `limit` rows of `<table>_alerts`; rows that do not decode are skipped
    /// (and logged).
    fn load_alert_records(&self, limit: usize) -> Result<Vec<AlertRecord>, Error> {
        self.alert_limit.store(limit.max(1), Ordering::Relaxed);
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        let Answer::Records(rows) = self.ask(Call::LoadAlerts(n), "read alert records")? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(rows.len());
        let mut damaged = 0;
        for row in rows {
            match serde_json::from_str::<AlertRecord>(&row) {
                Ok(r) => out.push(r),
                Err(_) => damaged += 1,
            }
        }
        if damaged > 0 {
            tracing::warn!(place = %self.place, damaged, "alert history: skipped rows that do not decode");
        }
        Ok(out)
    }

    /// Starts a thread with a connection of its own that `LISTEN`s to the store's
    /// channel; see [Changes made elsewhere](super#changes-made-elsewhere). Waits (at most
    /// the [`timeout`](PostgresStoreConfig::timeout)) until it listens, so that the engine's
    /// load that follows misses nothing. A second call stops the first listener.
    fn watch(&self) -> Option<mpsc::Receiver<StoreChange>> {
        let (changes, receiver) = mpsc::channel();
        let (ready, started) = mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let listener = Listener {
            config: self.config.clone(),
            sql: Sql::new(&self.table),
            place: self.place.clone(),
            changes,
            stop: Arc::clone(&stop),
            seen: None,
            ready: Some(ready),
        };
        if let Err(e) = std::thread::Builder::new()
            .name("rtdash-postgres-listen".to_owned())
            .spawn(move || listener.run())
        {
            tracing::error!(
                place = %self.place,
                error = %e,
                "dashboard store: cannot start the listener; changes made elsewhere will be \
                 seen at the next start only"
            );
            return None;
        }
        if let Some(old) = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(stop)
        {
            old.store(true, Ordering::Release);
        }
        if started.recv_timeout(self.timeout).is_err() {
            tracing::warn!(
                place = %self.place,
                "dashboard store: the listener is not connected yet; it reports every row \
                 once it is"
            );
        }
        Some(receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_and_timeouts_are_checked() {
        assert!(PostgresStoreConfig::default().validate().is_ok());
        for bad in ["", "1abc", "a-b", "a;drop table x", &"x".repeat(64)] {
            let c = PostgresStoreConfig {
                table: bad.to_owned(),
                ..PostgresStoreConfig::default()
            };
            let err = c.validate().unwrap_err();
            assert!(err.to_string().contains("table"), "{bad}: {err}");
        }
        let c = PostgresStoreConfig {
            timeout: Duration::ZERO,
            ..PostgresStoreConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("timeout"));
    }
}
