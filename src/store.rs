//! Where dashboards are kept: the [`DashboardStore`] trait, [`MemoryStore`] and
//! [`FileStore`]; [`StoreChange`], what a shared store reports of changes made elsewhere.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};

use rtdash_core::DashboardId;

use crate::{AlertRecord, DashboardDoc, Error};

/// Durable storage of dashboard documents, one per dashboard id.
///
/// The [`Registry`](crate::Registry) calls it synchronously: [`load_all`](Self::load_all)
/// once when the engine starts, then [`put`](Self::put) or [`delete`](Self::delete) for
/// every change, *before* the change becomes visible; if the store fails, the change is
/// refused with its error. Calls are serialised by the registry (never concurrent), in the
/// order the changes become visible. Documents handed to `put` are already validated.
///
/// The methods may block (disk `fsync`, a database round trip): the HTTP API makes its
/// changes on tokio's blocking thread pool, never on an async worker (see
/// [`Registry`'s blocking notes](crate::Registry#blocking)).
///
/// Implement it to keep dashboards in a database; use [`MemoryStore`] for tests and
/// [`FileStore`] for a directory of JSON files.
///
/// # Examples
///
/// A store whose disk is full: the registry refuses every change, and nothing changes.
///
/// ```
/// use rtdash::{DashboardDoc, DashboardId, DashboardStore, Engine, EngineConfig, Error, Loaded};
///
/// struct DiskFull;
///
/// impl DashboardStore for DiskFull {
///     fn load_all(&self) -> Result<Loaded, Error> {
///         Ok(Loaded::default())
///     }
///
///     fn put(&self, doc: &DashboardDoc) -> Result<(), Error> {
///         let path = format!("/var/lib/rtdash/{}.json", doc.id()).into();
///         let reason = "no space left on device".into();
///         Err(Error::Store { action: "write", path, reason })
///     }
///
///     fn delete(&self, _id: &DashboardId) -> Result<(), Error> {
///         Ok(())
///     }
/// }
///
/// let engine = Engine::new(EngineConfig::default(), DiskFull)?;
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?;
/// let err = engine.dashboards().create(doc).unwrap_err();
/// assert_eq!(err.code(), "store_failed");
/// assert!(!engine.dashboards().contains("ops"));
/// # Ok::<(), rtdash::Error>(())
/// ```
pub trait DashboardStore: Send + Sync + 'static {
    /// Loads every stored dashboard. A document that cannot be read or decoded should be
    /// reported in [`Loaded::problems`] (with where it is), not fail the whole load.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store as a whole cannot be read.
    fn load_all(&self) -> Result<Loaded, Error>;

    /// Stores `doc`, replacing any document with the same id. Must be atomic: after a
    /// crash, the store holds either the old or the new document, never a mix.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when it could not be stored.
    fn put(&self, doc: &DashboardDoc) -> Result<(), Error>;

    /// Removes the document with id `id` (nothing happens if there is none).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when it could not be removed.
    fn delete(&self, id: &DashboardId) -> Result<(), Error>;

    /// The stored document with id `id`, as a [`Loaded`] of at most one document: none
    /// (and no problem) when there is no such document, a [`LoadProblem`] when it cannot be
    /// read or decoded. Used to apply the changes [`watch`](Self::watch) reports.
    ///
    /// The default reads every document with [`load_all`](Self::load_all) and keeps
    /// `id`'s (problems are dropped); a shared store should read the one document.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be read.
    fn load_one(&self, id: &DashboardId) -> Result<Loaded, Error> {
        let mut loaded = self.load_all()?;
        loaded.dashboards.retain(|d| d.id() == id.as_str());
        loaded.problems.clear();
        Ok(loaded)
    }

    /// Changes made by *other writers* of a shared store (other nodes), for a store that
    /// several nodes share; `None` (the default) for a store only this engine writes, such
    /// as [`MemoryStore`] and [`FileStore`].
    ///
    /// The engine calls it once, when it is built, *before* [`load_all`](Self::load_all),
    /// and drains the receiver on a thread of its own. A [`StoreChange`] names the
    /// dashboard only: the engine reads it with [`load_one`](Self::load_one) while no local
    /// change is in progress, so a report that comes late never undoes a newer local
    /// change. If the document differs from the one the engine holds, it is validated
    /// against the engine's limits, swapped in without being written back, and announced
    /// to subscribers with the same `dashboard` frame a local change sends (see
    /// [`Registry`](crate::Registry#changes-made-elsewhere)).
    ///
    /// The contract for an implementation:
    ///
    /// - Report every dashboard changed elsewhere after this call, at least once, after
    ///   the change can be read. Reporting a dashboard twice, or reporting this engine's
    ///   own writes, is harmless (a document equal to the one held changes nothing), so a
    ///   store need not tell its own writes from others'.
    /// - When it may have missed changes (a lost connection), report, once it can, every
    ///   dashboard that may have changed meanwhile (compare the store with what it saw
    ///   last).
    /// - Stop (drop the sender) when the store is dropped or the receiver is; a send that
    ///   fails means the engine is gone.
    ///
    /// A second call may replace the first receiver (which then ends).
    fn watch(&self) -> Option<Receiver<StoreChange>> {
        None
    }

    /// Stores alert history records (new ones and changed ones: a resolve, a
    /// notification's outcome), replacing any stored record with the same
    /// [`id`](AlertRecord::id). Called about once a second from a blocking thread, only
    /// when records changed. The default keeps nothing (the history then lives in the
    /// engine's memory only, as with [`MemoryStore`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when they could not be stored; the engine offers them again later.
    fn save_alert_records(&self, records: &[AlertRecord]) -> Result<(), Error> {
        let _ = records;
        Ok(())
    }

    /// The newest `limit` stored alert history records (by `started_at`), in any order;
    /// called once when the engine is built. A record that cannot be decoded should be
    /// skipped (and logged), not fail the load. The default has none.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the records cannot be read at all.
    fn load_alert_records(&self, limit: usize) -> Result<Vec<AlertRecord>, Error> {
        let _ = limit;
        Ok(Vec::new())
    }
}

/// A dashboard of a shared [`DashboardStore`] changed by another writer (created,
/// replaced or deleted), reported through [`DashboardStore::watch`]; the engine reads it
/// again with [`DashboardStore::load_one`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreChange {
    /// The dashboard that changed.
    pub id: DashboardId,
}

/// What [`DashboardStore::load_all`] found.
///
/// # Examples
///
/// ```
/// use rtdash::{DashboardStore, FileStore};
///
/// let dir = std::env::temp_dir().join(format!("rtdash-doc-loaded-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("ops.json"), r#"{"id": "ops", "name": "Operations"}"#)?;
/// std::fs::write(dir.join("sales.json"), r#"{"id": "sales", "name": "#)?; // truncated
///
/// let loaded = FileStore::open(&dir)?.load_all()?;
/// assert_eq!(loaded.dashboards.len(), 1);
/// assert_eq!(loaded.dashboards[0].id(), "ops");
/// assert_eq!(loaded.problems[0].path, dir.join("sales.json"));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// The documents that decoded, in a stable order (by id).
    pub dashboards: Vec<DashboardDoc>,
    /// Documents that were skipped, files that look like documents but were ignored, and
    /// files that were cleaned up, with the reason.
    pub problems: Vec<LoadProblem>,
}

/// A stored document that was not loaded (or a leftover file that was removed), and why.
///
/// The engine starts without such documents;
/// [`Registry::load_problems`](crate::Registry::load_problems) lists them.
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, FileStore};
///
/// let dir = std::env::temp_dir().join(format!("rtdash-doc-problem-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("ops.json"), r#"{"id": "sales", "name": "Sales"}"#)?;
///
/// let engine = Engine::new(EngineConfig::default(), FileStore::open(&dir)?)?;
/// assert!(engine.dashboards().is_empty());
/// let problem = &engine.dashboards().load_problems()[0];
/// assert_eq!(problem.path, dir.join("ops.json"));
/// assert_eq!(
///     problem.reason,
///     "holds dashboard `sales` but is named for `ops`; rename the file to `sales.json`"
/// );
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadProblem {
    /// Where it is: a file path for [`FileStore`], a key for other stores.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A [`DashboardStore`] in memory: nothing survives the process. Cheap to clone; clones
/// share the same documents, so a test can keep one to look inside.
///
/// # Examples
///
/// ```
/// use rtdash::{DashboardDoc, DashboardStore, MemoryStore};
///
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?;
/// let store = MemoryStore::new().with_dashboard(doc);
/// assert_eq!(store.load_all()?.dashboards.len(), 1);
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    docs: Arc<Mutex<BTreeMap<String, DashboardDoc>>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a document, e.g. to start an engine with dashboards.
    #[must_use]
    pub fn with_dashboard(self, doc: DashboardDoc) -> Self {
        self.lock().insert(doc.id().to_owned(), doc);
        self
    }

    /// The stored document with id `id`.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<DashboardDoc> {
        self.lock().get(id).cloned()
    }

    /// Number of stored documents.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DashboardDoc>> {
        self.docs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DashboardStore for MemoryStore {
    fn load_all(&self) -> Result<Loaded, Error> {
        Ok(Loaded {
            dashboards: self.lock().values().cloned().collect(),
            problems: Vec::new(),
        })
    }

    fn put(&self, doc: &DashboardDoc) -> Result<(), Error> {
        self.lock().insert(doc.id().to_owned(), doc.clone());
        Ok(())
    }

    fn delete(&self, id: &DashboardId) -> Result<(), Error> {
        self.lock().remove(id.as_str());
        Ok(())
    }
}

/// A [`DashboardStore`] in a directory: one JSON document per dashboard, `<id>.json`
/// (ids are limited to `A-Z a-z 0-9 _ . -`, so they are safe file names).
///
/// # Crash safety
///
/// [`put`](DashboardStore::put) writes the new document to a temporary file in the same
/// directory (`.<id>.json.<n>.tmp`), flushes it to disk (`fsync`), renames it over
/// `<id>.json` (atomic on POSIX file systems) and flushes the directory, so a crash at any
/// point leaves either the previous document or the new one, never a half-written file.
/// [`delete`](DashboardStore::delete) removes the file and flushes the directory.
///
/// [`load_all`](DashboardStore::load_all) removes leftover temporary files of interrupted
/// writes and reports them; a file that cannot be read or decoded, or whose `id` does not
/// match its name, is skipped and reported with its path. A file that looks like a dashboard
/// but cannot be one is skipped and reported too: a `*.json` name that is not `<id>.json`
/// for a valid [`DashboardId`] (a dot-file such as `.hidden.json`, a space, a name that is
/// not UTF-8), an upper-case `.JSON`, or a `<id>.json` that is not a regular file. Other
/// files are ignored.
///
/// Ids are case-sensitive: on a case-insensitive file system (the default on macOS and
/// Windows) `Ops` and `ops` would share one file, so keep the directory on a case-sensitive
/// one.
///
/// # Examples
///
/// ```
/// use rtdash::{DashboardDoc, DashboardStore, FileStore};
///
/// let dir = std::env::temp_dir().join(format!("rtdash-doc-{}", std::process::id()));
/// let store = FileStore::open(&dir)?;
/// store.put(&DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?)?;
/// assert!(dir.join("ops.json").exists());
/// assert_eq!(store.load_all()?.dashboards[0].id(), "ops");
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    counter: AtomicU64,
    /// The alert history file's state: lines written, the bound to compact to.
    alerts: Mutex<AlertFile>,
}

/// The alert history file of a [`FileStore`]: `alert-history.jsonl`, one record per line,
/// appended to; a record's later line replaces its earlier ones. It is compacted (the newest
/// record of each id, the newest `limit` records) when it holds four times the bound.
#[derive(Debug)]
struct AlertFile {
    lines: usize,
    limit: usize,
}

/// The alert history file's name in a [`FileStore`]'s directory.
const ALERT_FILE: &str = "alert-history.jsonl";

impl FileStore {
    /// A store in directory `dir`, which is created if missing.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the directory cannot be created or is not a directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::store("create", &dir, e))?;
        if !dir.is_dir() {
            return Err(Error::store("open", &dir, "not a directory"));
        }
        Ok(Self {
            dir,
            counter: AtomicU64::new(0),
            alerts: Mutex::new(AlertFile {
                lines: 0,
                limit: 10_000,
            }),
        })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds dashboard `id`.
    #[must_use]
    pub fn path_of(&self, id: &DashboardId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The file that holds the alert history (`alert-history.jsonl`).
    #[must_use]
    pub fn alert_history_path(&self) -> PathBuf {
        self.dir.join(ALERT_FILE)
    }

    /// Reads the alert history file: the newest line of each record id, the newest `limit`
    /// records by start, and how many lines the file holds. Damaged lines (a write cut by a
    /// crash) are skipped and logged.
    fn read_alert_file(&self, limit: usize) -> Result<(Vec<AlertRecord>, usize), Error> {
        let path = self.alert_history_path();
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(Error::store("read", &path, e)),
        };
        let mut by_id: HashMap<rtdash_core::Uuid, AlertRecord> = HashMap::new();
        let mut lines = 0;
        let mut damaged = 0;
        for line in text.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines += 1;
            match serde_json::from_slice::<AlertRecord>(line) {
                Ok(r) => {
                    by_id.insert(r.id, r);
                }
                Err(_) => damaged += 1,
            }
        }
        if damaged > 0 {
            tracing::warn!(path = %path.display(), damaged, "alert history: skipped lines that do not decode");
        }
        let mut records: Vec<AlertRecord> = by_id.into_values().collect();
        records.sort_by_key(|r| std::cmp::Reverse((r.started_at, r.id)));
        records.truncate(limit);
        Ok((records, lines))
    }

    /// Rewrites the alert history file with `records` only (atomically: a temporary file
    /// renamed over it).
    fn write_alert_file(&self, records: &[AlertRecord]) -> Result<(), Error> {
        let target = self.alert_history_path();
        let tmp = self
            .dir
            .join(format!(".{ALERT_FILE}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            let mut out = Vec::new();
            for r in records {
                serde_json::to_writer(&mut out, r)?;
                out.push(b'\n');
            }
            f.write_all(&out)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::store("write", &tmp, e));
        }
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::store("rename", &target, e));
        }
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), Error> {
        #[cfg(unix)]
        {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::store("sync", &self.dir, e))?;
        }
        Ok(())
    }
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Whether a file name ends with `.json` in any case: it looks like a dashboard document.
fn looks_like_json(name: &[u8]) -> bool {
    name.len() >= 5 && name[name.len() - 5..].eq_ignore_ascii_case(b".json")
}

impl DashboardStore for FileStore {
    fn load_all(&self) -> Result<Loaded, Error> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::store("list", &self.dir, e))?;
        let mut names: Vec<(String, PathBuf)> = Vec::new();
        let mut out = Loaded::default();
        for entry in entries {
            let entry = entry.map_err(|e| Error::store("list", &self.dir, e))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                if looks_like_json(path.file_name().map_or(&[], |n| n.as_encoded_bytes())) {
                    out.problems.push(LoadProblem {
                        path,
                        reason: "ignored: the file name is not UTF-8, so it names no dashboard \
                                 id (dashboards are stored as `<id>.json`)"
                            .to_owned(),
                    });
                }
                continue;
            };
            names.push((name, path));
        }
        names.sort();
        out.problems.sort_by(|a, b| a.path.cmp(&b.path));
        let mut removed_temp = false;
        for (name, path) in names {
            if is_temp_name(&name) {
                let reason = match fs::remove_file(&path) {
                    Ok(()) => {
                        removed_temp = true;
                        "leftover temporary file of an interrupted write; removed (the \
                         previous version of the dashboard, if any, was kept)"
                            .to_owned()
                    }
                    Err(e) => format!(
                        "leftover temporary file of an interrupted write; ignored, and it could \
                         not be removed: {e}"
                    ),
                };
                out.problems.push(LoadProblem { path, reason });
                continue;
            }
            if !looks_like_json(name.as_bytes()) {
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                out.problems.push(LoadProblem {
                    path,
                    reason: "ignored: dashboards are stored as `<id>.json`, with a lower-case \
                             extension; rename the file to load it"
                        .to_owned(),
                });
                continue;
            };
            if let Err(e) = DashboardId::new(stem) {
                out.problems.push(LoadProblem {
                    path,
                    reason: format!("ignored: the name is not `<id>.json` for a valid id: {e}"),
                });
                continue;
            }
            if !path.is_file() {
                out.problems.push(LoadProblem {
                    path,
                    reason: "ignored: not a regular file".to_owned(),
                });
                continue;
            }
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    out.problems.push(LoadProblem {
                        path,
                        reason: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            match DashboardDoc::from_json(&bytes) {
                Ok(doc) if doc.id() == stem => out.dashboards.push(doc),
                Ok(doc) => out.problems.push(LoadProblem {
                    path,
                    reason: format!(
                        "holds dashboard `{}` but is named for `{stem}`; rename the file to `{}.json`",
                        doc.id(),
                        doc.id()
                    ),
                }),
                Err(e) => out.problems.push(LoadProblem {
                    path,
                    reason: format!("not a valid dashboard document: {e}"),
                }),
            }
        }
        if removed_temp {
            self.sync_dir()?;
        }
        Ok(out)
    }

    fn put(&self, doc: &DashboardDoc) -> Result<(), Error> {
        let target = self.path_of(&doc.dashboard.id);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{}.json.{}-{n}.tmp", doc.id(), std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            let mut json = doc.to_json();
            json.push('\n');
            f.write_all(json.as_bytes())?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::store("write", &tmp, e));
        }
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::store("rename", &target, e));
        }
        self.sync_dir()
    }

    fn delete(&self, id: &DashboardId) -> Result<(), Error> {
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::store("remove", &path, e)),
        }
    }

    /// Appends one line per record to `alert-history.jsonl` and flushes it to disk;
    /// compacts the file when it holds four times the bound.
    fn save_alert_records(&self, records: &[AlertRecord]) -> Result<(), Error> {
        let mut file = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.alert_history_path();
        let mut out = Vec::new();
        for r in records {
            serde_json::to_writer(&mut out, r).map_err(|e| Error::store("encode", &path, e))?;
            out.push(b'\n');
        }
        let append = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().append(true).create(true).open(&path)?;
            f.write_all(&out)?;
            f.sync_data()
        };
        append().map_err(|e| Error::store("append", &path, e))?;
        file.lines += records.len();
        if file.lines > file.limit.saturating_mul(4).max(1024) {
            let (kept, _) = self.read_alert_file(file.limit)?;
            self.write_alert_file(&kept)?;
            file.lines = kept.len();
        }
        Ok(())
    }

    /// Reads `alert-history.jsonl` (skipping damaged lines) and compacts it when it holds
    /// more than twice what it keeps.
    fn load_alert_records(&self, limit: usize) -> Result<Vec<AlertRecord>, Error> {
        let mut file = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        file.limit = limit.max(1);
        let (records, lines) = self.read_alert_file(file.limit)?;
        file.lines = lines;
        if lines > records.len().saturating_mul(2).max(64) {
            self.write_alert_file(&records)?;
            file.lines = records.len();
        }
        Ok(records)
    }
}

impl<S: DashboardStore> DashboardStore for Arc<S> {
    fn load_all(&self) -> Result<Loaded, Error> {
        (**self).load_all()
    }

    fn put(&self, doc: &DashboardDoc) -> Result<(), Error> {
        (**self).put(doc)
    }

    fn delete(&self, id: &DashboardId) -> Result<(), Error> {
        (**self).delete(id)
    }

    fn load_one(&self, id: &DashboardId) -> Result<Loaded, Error> {
        (**self).load_one(id)
    }

    fn watch(&self) -> Option<Receiver<StoreChange>> {
        (**self).watch()
    }

    fn save_alert_records(&self, records: &[AlertRecord]) -> Result<(), Error> {
        (**self).save_alert_records(records)
    }

    fn load_alert_records(&self, limit: usize) -> Result<Vec<AlertRecord>, Error> {
        (**self).load_alert_records(limit)
    }
}
