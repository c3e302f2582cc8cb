//! [`PostgresStore`]: dashboards (with their alert rules) in one PostgreSQL table.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::store::{DashboardStore, LoadProblem, Loaded};
use crate::{DashboardDoc, DashboardId, Error};

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
    Put(String, String),
    Delete(String),
}

type Reply = mpsc::SyncSender<Result<Loaded, Error>>;

/// A [`DashboardStore`] in a PostgreSQL table. See the [module docs](super).
pub struct PostgresStore {
    calls: Mutex<mpsc::Sender<(Call, Reply)>>,
    /// Where, for messages: `postgres://host:port/db/table` (no password).
    place: String,
    timeout: Duration,
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
    upsert: String,
    delete: String,
}

impl Sql {
    fn new(table: &str) -> Self {
        Self {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, doc jsonb NOT NULL, \
                 updated_at timestamptz NOT NULL DEFAULT now())"
            ),
            select: format!("SELECT id, doc::text FROM {table} ORDER BY id"),
            upsert: format!(
                "INSERT INTO {table} (id, doc) VALUES ($1, $2::text::jsonb) \
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at = now()"
            ),
            delete: format!("DELETE FROM {table} WHERE id = $1"),
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
    fn run(&mut self, call: &Call) -> Result<Loaded, Error> {
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
        match call {
            Call::LoadAll => conn
                .and_then(|c| c.query(&sql.select, &[]))
                .map(|rows| load(&rows, place))
                .map_err(|e| fail("list", None, &e)),
            Call::Put(id, json) => conn
                .and_then(|c| c.execute(&sql.upsert, &[id, json]))
                .map(|_| Loaded::default())
                .map_err(|e| fail("write", Some(id), &e)),
            Call::Delete(id) => conn
                .and_then(|c| c.execute(&sql.delete, &[id]))
                .map(|_| Loaded::default())
                .map_err(|e| fail("remove", Some(id), &e)),
        }
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
        let path = PathBuf::from(format!("{place}/{id}"));
        match DashboardDoc::from_json(text.as_bytes()) {
            Ok(doc) if doc.id() == id => loaded.dashboards.push(doc),
            Ok(doc) => loaded.problems.push(LoadProblem {
                path,
                reason: format!("the row's document has id {:?}", doc.id()),
            }),
            Err(e) => loaded.problems.push(LoadProblem {
                path,
                reason: e.to_string(),
            }),
        }
    }
    loaded
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
        };
        // Connect now, so that a wrong URL or a server that is down shows at start.
        store.call(Call::LoadAll, "connect").map(|_| store)
    }

    fn call(&self, call: Call, action: &'static str) -> Result<Loaded, Error> {
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
