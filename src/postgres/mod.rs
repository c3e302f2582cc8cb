//! PostgreSQL for rtdash (feature `postgres`):
//!
//! - [`PostgresStore`], a [`DashboardStore`](crate::DashboardStore) that keeps dashboards
//!   (with their alert rules) in one table, so that several nodes can share one store;
//! - [`PostgresArchive`], a [`HistoryArchive`](crate::history::HistoryArchive) that keeps
//!   per-series one-minute (later one-hour) roll-ups for long-range widget history (see
//!   [its docs](PostgresArchive) and the [`archive`] section below).
//!
//! # Dashboards
//!
//! ```no_run
//! use rtdash::postgres::{PostgresStore, PostgresStoreConfig};
//! use rtdash::{Engine, EngineConfig};
//!
//! # fn main() -> Result<(), rtdash::Error> {
//! let store = PostgresStore::connect(
//!     "postgres://postgres@127.0.0.1:5432/rtdash",
//!     PostgresStoreConfig::default(),
//! )?;
//! let engine = Engine::builder(EngineConfig::default()).store(store).build()?;
//! # drop(engine); Ok(()) }
//! ```
//!
//! The table (created if missing, default `rtdash_dashboards`) has one row per dashboard:
//! `id text primary key, doc jsonb, updated_at timestamptz`. A write is one statement
//! (`INSERT … ON CONFLICT … DO UPDATE`, `DELETE`), so a crash leaves the old or the new
//! document, never a mix. A row that does not decode (edited by hand, or written by a
//! newer version) is reported by [`Registry::load_problems`](crate::Registry::load_problems)
//! and skipped, never a failed start.
//!
//! The store's calls are synchronous (the [`DashboardStore`](crate::DashboardStore) contract); they run on a
//! thread of the store's own with one connection, so they are safe from any context, a
//! tokio runtime included. A lost connection (PostgreSQL restarted) is made again at the
//! next call; a call that cannot be answered within
//! [`timeout`](PostgresStoreConfig::timeout) fails with [`Error::Store`].
//!
//! # Changes made elsewhere
//!
//! Nodes sharing the store read every dashboard at start, then follow each other's
//! changes live (within a few milliseconds on a LAN):
//!
//! - every write notifies the table's channel (`pg_notify('<table>', '<id>')`, the table
//!   name in lower case) in the same statement, so the notification is sent if and only
//!   if the write commits;
//! - [`DashboardStore::watch`](crate::DashboardStore::watch) starts a listener thread
//!   with a connection of its own that `LISTEN`s to the channel and reports each notified
//!   id; the engine reads the row again (under its registry's write lock, so a late report
//!   never undoes a newer local change), validates it against its own limits and swaps it
//!   in, announcing it to its subscribers with the usual `dashboard` frame (see
//!   [`Registry`](crate::Registry#changes-made-elsewhere)). A node's own writes come back
//!   too and change nothing: the document equals the one it holds;
//! - a lost listener connection (PostgreSQL restarted, the session ended) is made again
//!   with a backoff of up to 1 s; the listener then reads the whole table and reports every
//!   row that changed or went since its last read, so changes made while no notification
//!   could arrive are not lost;
//! - a row that does not decode, or a document over this node's limits, is not applied
//!   (the node keeps its version) and is listed by
//!   [`Registry::skipped_changes`](crate::Registry::skipped_changes).
//!
//! A row changed by hand (`psql`) is seen live only if the change is notified too
//! (`NOTIFY rtdash_dashboards, 'ops'`); otherwise the nodes see it at their next start or
//! their listener's next reconnection. The listener notices a dead server when its socket
//! closes; a silently dropped network path is noticed only by TCP keepalive.
//!
//! # Archive
//!
//! See [`PostgresArchive`]: the schema, how writes are batched off the hot path, what an
//! outage costs, downsampling and retention.
//!
//! [`archive`]: #archive

mod archive;
mod store;

pub use archive::{ArchiveConfig, ArchiveStats, MaintenanceReport, PostgresArchive};
pub use store::{PostgresStore, PostgresStoreConfig};

use crate::Error;

/// Checks a table name: letters, digits and `_`, not starting with a digit, at most 63
/// bytes (so it can be put in SQL as is).
fn check_table(field: &'static str, t: &str) -> Result<(), Error> {
    let ok = !t.is_empty()
        && t.len() <= 63
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !t.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            field,
            reason: format!(
                "{:?}: letters, digits and `_`, not starting with a digit, at most 63 bytes",
                t.chars().take(80).collect::<String>()
            ),
        })
    }
}

/// Parses a connection URL (`postgres://user[:password]@host[:port]/db` or the
/// `key=value` form); returns it with `postgres://host:port/db` for messages (never the
/// password).
fn parse_url(url: &str) -> Result<(postgres::Config, String), Error> {
    let pg: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| Error::InvalidConfig {
            field: "url",
            reason: e.to_string(),
        })?;
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().unwrap_or("").to_owned();
    Ok((pg, format!("postgres://{host}:{port}/{db}")))
}
