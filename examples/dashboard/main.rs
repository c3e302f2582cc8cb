//! Run with: `cargo run --release --example dashboard`
//!
//! A complete real-time dashboard in one process: an [`Engine`] with an in-memory dashboard
//! store (or a file store with `--data-dir`), the *Operations overview* dashboard from
//! `ops-dashboard.json` with its alert rules, a demo producer ingesting realistic traffic
//! (`--no-demo` turns it off), and one HTTP server for both the rtdash API
//! ([`rtdash::http::router`]: `POST /ingest`, `/dashboards`, `WS /stream/{id}`, SSE,
//! `/metrics`) and the page (`web/`, embedded in the binary). Prints the URL to open; Ctrl-C
//! stops it gracefully.
//!
//! Auth: by default every client may see every dashboard ([`AllowAll`]): this is a local
//! demo. Build with `--features jwt` and pass `--jwt-secret` to require HS256 tokens.
//!
//! Cluster: build with `--features redis` and pass `--redis URL --node-id ID --role
//! aggregator|edge` to run several nodes as one (see the README's "Three nodes").
//!
//! See `examples/dashboard/README.md` for the flags and the page.

mod demo;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rtdash::{
    AllowAll, DashboardDoc, Engine, EngineConfig, FileStore, MemoryStore, MetricsSink, Timestamp,
    TransportConfig,
};
use tokio::sync::watch;

use crate::demo::{Demo, DemoConfig, IncidentKind};

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const STYLE_CSS: &str = include_str!("web/style.css");
/// The seeded dashboard, with its alert rules.
const OPS_DASHBOARD: &str = include_str!("ops-dashboard.json");

/// How often the demo producer ingests a round of events.
const DEMO_TICK: Duration = Duration::from_millis(100);

const USAGE: &str = "\
rtdash dashboard example: a real-time operations dashboard in the browser

Usage: dashboard [OPTIONS]

Options:
  --addr HOST:PORT         listen address (default 127.0.0.1:8080; port 0 picks a free port)
  --data-dir DIR           keep dashboards as JSON files in DIR (default: in memory)
  --postgres URL           keep dashboards and history (one-minute roll-ups, 7 days, then
                           hourly) in PostgreSQL at URL, shared by every node that uses it
                           (needs --features postgres; default: in memory)
  --no-demo                do not run the built-in demo producer
  --incident-after SECS    start the demo's first incident after SECS seconds (default 45)
  --seed N                 seed of the demo's random numbers (default: from the clock)
  --jwt-secret SECRET      require HS256 JWTs signed with SECRET (needs --features jwt)
  --redis URL              join a cluster through the Redis at URL (needs --features redis)
  --node-id ID             this node's name in the cluster (default: random)
  --role ROLE              aggregator (owns partitions of the ingest log, evaluates,
                           publishes; the default) or edge (serves clients and appends
                           POST /ingest to the log; no demo)
  --partitions N           partitions of the cluster's durable ingest log (default 8; every
                           node of a cluster must use the same number)
  --checkpoint-secs SECS   how often an aggregator checkpoints each partition it owns
                           (default 2)
  -h, --help               print this help
";

/// The command line.
#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    data_dir: Option<PathBuf>,
    postgres: Option<String>,
    demo: bool,
    incident_after: Duration,
    seed: Option<u64>,
    jwt_secret: Option<String>,
    redis: Option<String>,
    node_id: Option<String>,
    edge: bool,
    partitions: u32,
    checkpoint_every: Duration,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            data_dir: None,
            postgres: None,
            demo: true,
            incident_after: Duration::from_secs(45),
            seed: None,
            jwt_secret: None,
            redis: None,
            node_id: None,
            edge: false,
            partitions: 8,
            checkpoint_every: Duration::from_secs(2),
        }
    }
}

/// Parses the flags; `Ok(None)` means `--help`.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args::default();
    while let Some(flag) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (flag.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value ({what})"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => {
                let v = value("HOST:PORT, e.g. 127.0.0.1:8080")?;
                args.addr = v.parse().map_err(|e| {
                    format!("--addr {v:?}: {e}; expected HOST:PORT, e.g. 127.0.0.1:8080")
                })?;
            }
            "--data-dir" => args.data_dir = Some(PathBuf::from(value("a directory")?)),
            "--postgres" => {
                args.postgres = Some(value("a URL, e.g. postgres://postgres@127.0.0.1/postgres")?);
            }
            "--no-demo" => args.demo = false,
            "--incident-after" => {
                let v = value("seconds")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|e| format!("--incident-after {v:?}: {e}; expected seconds"))?;
                args.incident_after = Duration::try_from_secs_f64(secs).map_err(|_| {
                    format!("--incident-after {v:?}: expected a non-negative number of seconds")
                })?;
            }
            "--seed" => {
                let v = value("an integer")?;
                args.seed = Some(
                    v.parse()
                        .map_err(|e| format!("--seed {v:?}: {e}; expected an unsigned integer"))?,
                );
            }
            "--jwt-secret" => {
                let v = value("a secret")?;
                if v.is_empty() {
                    return Err("--jwt-secret is empty".into());
                }
                args.jwt_secret = Some(v);
            }
            "--redis" => args.redis = Some(value("a URL, e.g. redis://127.0.0.1:6379")?),
            "--node-id" => args.node_id = Some(value("a name")?),
            "--role" => {
                args.edge = match value("aggregator or edge")?.as_str() {
                    "aggregator" => false,
                    "edge" => true,
                    other => {
                        return Err(format!("--role {other:?}: expected aggregator or edge"));
                    }
                }
            }
            "--partitions" => {
                let v = value("a number of partitions")?;
                args.partitions = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| format!("--partitions {v:?}: expected 1 to 1024"))?;
            }
            "--checkpoint-secs" => {
                let v = value("seconds")?;
                args.checkpoint_every = v
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .filter(|d| *d >= Duration::from_millis(50))
                    .ok_or_else(|| {
                        format!("--checkpoint-secs {v:?}: expected seconds, at least 0.05")
                    })?;
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    if args.redis.is_none() && (args.edge || args.node_id.is_some()) {
        return Err("--role and --node-id need --redis URL".into());
    }
    if args.data_dir.is_some() && args.postgres.is_some() {
        return Err("--data-dir and --postgres: choose one dashboard store".into());
    }
    if args.redis.is_none() && args.partitions != Args::default().partitions {
        return Err("--partitions needs --redis URL".into());
    }
    if args.edge {
        args.demo = false;
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rtdash dashboard: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtdash dashboard: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // The router's `/metrics` serves this engine's own recorder.
    let config = EngineConfig::default().with_metrics(MetricsSink::Isolated);
    let builder = Engine::builder(config);
    let builder = match (&args.data_dir, &args.postgres) {
        (Some(dir), _) => builder.store(FileStore::open(dir)?),
        (None, Some(url)) => postgres_store(builder, url)?,
        (None, None) => builder.store(MemoryStore::new()),
    };
    let builder = history_archive(builder, &args)?;
    let engine = join_cluster(builder, &args)?.build()?;
    for p in engine.dashboards().load_problems() {
        eprintln!(
            "rtdash dashboard: skipped {}: {}",
            p.path.display(),
            p.reason
        );
    }
    seed_dashboard(&engine)?;

    // Every node takes events: an edge appends them to the cluster's log.
    let (api, token) = api_router(&engine, args.jwt_secret.as_deref(), true)?;
    let app = api.merge(page_router());
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr()?;
    let shown = if local.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))
    } else {
        local
    };
    match token {
        None => println!("rtdash dashboard: open http://{shown}/"),
        Some(token) => {
            println!("rtdash dashboard: open http://{shown}/?token={token}");
            println!(
                "rtdash dashboard: (a demo token valid for 24 h; streams need an HS256 JWT with \
                 claims sub, exp and topics)"
            );
        }
    }
    if args.edge {
        println!("rtdash dashboard: edge node: serves what the aggregators publish");
    } else if !args.demo {
        println!("rtdash dashboard: demo producer off; POST events to http://{shown}/ingest");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    // The refresh scheduler; `task.shutdown()` stops it and closes the streams.
    let task = engine.spawn();
    let producer = args.demo.then(|| {
        let config = DemoConfig {
            seed: args.seed.unwrap_or_else(clock_seed),
            first_incident: args.incident_after,
        };
        tokio::spawn(run_demo(engine.clone(), config, stopped(stop_rx.clone())))
    });
    // rtdash's serve loop: deadlines for request headers and bodies, and a cap on
    // connections per peer address (axum::serve has neither).
    let mut server = tokio::spawn(rtdash::http::serve(
        listener,
        app,
        rtdash::http::ServeConfig::default(),
        stopped(stop_rx),
    ));

    let ended_early = tokio::select! {
        () = shutdown_signal() => {
            println!("rtdash dashboard: shutting down");
            None
        }
        r = &mut server => Some(r),
    };
    let _ = stop_tx.send(true);
    // Streams are upgraded connections that the server's graceful shutdown does not track:
    // the task closes them (code 1001, "going away") so clients reconnect, and stops the
    // scheduler; then wait for the rest.
    task.shutdown().await;
    let served = match ended_early {
        Some(r) => r,
        None => server.await,
    };
    if let Some(p) = producer {
        let _ = p.await;
    }
    served?;
    Ok(())
}

/// Where roll-up buckets go once the window store lets them go, for history beyond its
/// hour: in memory (a day of the demo's series is about 60,000 buckets), or with
/// `--postgres` in PostgreSQL.
fn history_archive(
    builder: rtdash::EngineBuilder,
    args: &Args,
) -> Result<rtdash::EngineBuilder, Box<dyn std::error::Error>> {
    match &args.postgres {
        Some(url) => postgres_archive(builder, url),
        None => Ok(builder.history_archive(rtdash::history::MemoryArchive::new(MEMORY_ARCHIVE))),
    }
}

/// Most roll-up buckets the in-memory archive keeps: a week of 500 series.
const MEMORY_ARCHIVE: usize = 5_000_000;

#[cfg(feature = "postgres")]
fn postgres_archive(
    builder: rtdash::EngineBuilder,
    url: &str,
) -> Result<rtdash::EngineBuilder, Box<dyn std::error::Error>> {
    use rtdash::postgres::{ArchiveConfig, PostgresArchive};
    let archive = PostgresArchive::connect(url, ArchiveConfig::default())?;
    println!(
        "rtdash dashboard: history in PostgreSQL, table {}",
        archive.table()
    );
    Ok(builder.history_archive(archive))
}

#[cfg(not(feature = "postgres"))]
fn postgres_archive(
    _: rtdash::EngineBuilder,
    _: &str,
) -> Result<rtdash::EngineBuilder, Box<dyn std::error::Error>> {
    Err("--postgres needs the `postgres` feature".into())
}

/// With `--postgres`: dashboards in PostgreSQL.
#[cfg(feature = "postgres")]
fn postgres_store(
    builder: rtdash::EngineBuilder,
    url: &str,
) -> Result<rtdash::EngineBuilder, Box<dyn std::error::Error>> {
    use rtdash::postgres::{PostgresStore, PostgresStoreConfig};
    let store = PostgresStore::connect(url, PostgresStoreConfig::default())?;
    println!("rtdash dashboard: dashboards in {store:?}");
    Ok(builder.store(store))
}

#[cfg(not(feature = "postgres"))]
fn postgres_store(
    _: rtdash::EngineBuilder,
    _: &str,
) -> Result<rtdash::EngineBuilder, Box<dyn std::error::Error>> {
    Err(
        "--postgres needs the `postgres` feature: cargo run --release --features postgres \
         --example dashboard"
            .into(),
    )
}

/// With `--redis`: the engine joins the cluster as an aggregator or an edge.
#[cfg(feature = "redis")]
fn join_cluster(
    builder: rtdash::EngineBuilder,
    args: &Args,
) -> Result<rtdash::EngineBuilder, Box<dyn std::error::Error>> {
    use rtdash::redis::{Backplane, BackplaneConfig, LogConfig, Role};
    let Some(url) = &args.redis else {
        return Ok(builder);
    };
    let config = match &args.node_id {
        Some(id) => BackplaneConfig::new(id.clone()),
        None => BackplaneConfig::default(),
    };
    let role = if args.edge {
        Role::Edge
    } else {
        Role::Aggregator
    };
    println!(
        "rtdash dashboard: node {} joins the cluster at {} as {}",
        config.node_id,
        url,
        if args.edge {
            "an edge"
        } else {
            "an aggregator"
        }
    );
    let backplane = Backplane::new(url, config)?;
    // Ingest goes through the durable, partitioned log on Redis Streams: any node
    // appends, each partition is aggregated by one aggregator at a time.
    let log = backplane.stream_log(LogConfig {
        partitions: args.partitions,
        checkpoint_every: args.checkpoint_every,
        ..LogConfig::default()
    })?;
    Ok(builder.redis(&backplane, role).durable_log(log))
}

#[cfg(not(feature = "redis"))]
fn join_cluster(
    builder: rtdash::EngineBuilder,
    args: &Args,
) -> Result<rtdash::EngineBuilder, Box<dyn std::error::Error>> {
    match args.redis {
        None => Ok(builder),
        Some(_) => Err(
            "--redis needs the `redis` feature: cargo run --release --features redis \
                        --example dashboard"
                .into(),
        ),
    }
}

/// Creates the demo dashboard unless the store already has one with its id (so edits kept
/// in `--data-dir` survive a restart).
fn seed_dashboard(engine: &Engine) -> Result<(), rtdash::Error> {
    let doc = DashboardDoc::from_json(OPS_DASHBOARD.as_bytes())?;
    if !engine.dashboards().contains(doc.id()) {
        engine.dashboards().create(doc)?;
    }
    Ok(())
}

/// The rtdash HTTP API with the chosen authenticator, and with `--jwt-secret` a demo token
/// for the seeded dashboard.
fn api_router(
    engine: &Engine,
    jwt_secret: Option<&str>,
    ingest: bool,
) -> Result<(Router, Option<String>), String> {
    let config = TransportConfig::default();
    match jwt_secret {
        None => {
            let api = rtdash::http::Routes::new(engine.clone(), AllowAll, config)
                .ingest(ingest)
                .build();
            Ok((api, None))
        }
        #[cfg(feature = "jwt")]
        Some(secret) => {
            let auth = rtdash::transport::JwtAuthenticator::hs256(secret.as_bytes());
            let expires = SystemTime::now() + Duration::from_secs(24 * 3600);
            // The demo reader sees every dashboard (`*`): the page's editor creates new
            // ones, and its metric pickers read `GET /catalog`, which spans them all.
            let token = auth
                .issue("demo", &["*"], expires)
                .map_err(|e| format!("cannot sign the demo token: {e}"))?;
            // Writers need a token of their own (another key): a reader's token opens the
            // streams and the reads, never the routes that change state.
            let writers =
                rtdash::transport::JwtAuthenticator::hs256(format!("{secret}/writers").as_bytes());
            let writer_token = writers
                .issue("admin", &["*"], expires)
                .map_err(|e| format!("cannot sign the writer token: {e}"))?;
            println!(
                "rtdash dashboard: writer token (POST /ingest, dashboard changes; 24 h): {writer_token}"
            );
            let api = rtdash::http::Routes::new(engine.clone(), auth, config)
                .ingest(ingest)
                .build()
                .layer(rtdash::http::RequireWriters::new(writers));
            Ok((api, Some(token)))
        }
        #[cfg(not(feature = "jwt"))]
        Some(_) => Err(
            "--jwt-secret needs the `jwt` feature: cargo run --release --features jwt --example dashboard"
                .into(),
        ),
    }
}

/// The page: `/` and its two assets, embedded in the binary.
fn page_router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML, true) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS, false) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS, false) }),
        )
}

fn asset(content_type: &'static str, body: &'static str, page: bool) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The binary may change between runs on the same port: always revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if page {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; \
                 base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
    }
    resp
}

/// Ingests a round of demo events every [`DEMO_TICK`] until `shutdown` completes.
async fn run_demo(engine: Engine, config: DemoConfig, shutdown: impl Future<Output = ()>) {
    let mut demo = Demo::new(config);
    let mut interval = tokio::time::interval(DEMO_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    let mut incident = None;
    let mut warned = false;
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = interval.tick() => {}
        }
        // `submit` works with any ingest log (a cluster's durable one too).
        let problem = match engine.submit(demo.tick(Timestamp::now())).await {
            Ok(report) => report.errors.first().map(|e| e.message.clone()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = problem
            && !warned
        {
            warned = true;
            eprintln!("rtdash dashboard: demo event refused (reported once): {e}");
        }
        if demo.incident() != incident {
            incident = demo.incident();
            match incident {
                Some(kind) => println!("rtdash dashboard: demo incident: {}", describe(kind)),
                None => println!("rtdash dashboard: demo incident over"),
            }
        }
    }
}

fn describe(kind: IncidentKind) -> String {
    match kind {
        IncidentKind::BadDeploy => "bad deploy, error rate up in every region".into(),
        IncidentKind::SlowRegion(i) => {
            format!("slow region, latency up in {}", demo::region_name(i))
        }
        IncidentKind::QueueBacklog => "queue backlog building up".into(),
    }
}

/// A future that completes once `rx` sees `true` (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Completes on Ctrl-C, or on SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5eed, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_flags() {
        let a = parse(&[
            "--addr",
            "127.0.0.1:0",
            "--no-demo",
            "--incident-after=2.5",
            "--seed",
            "7",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.addr.port(), 0);
        assert!(!a.demo);
        assert_eq!(a.incident_after, Duration::from_millis(2500));
        assert_eq!(a.seed, Some(7));
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn refuses_bad_flags() {
        for bad in [
            &["--addr"][..],
            &["--addr", "localhost"],
            &["--incident-after", "-1"],
            &["--seed", "x"],
            &["--jwt-secret="],
            &["--what"],
            &["--role", "edge"],
            &["--redis", "redis://x", "--role", "boss"],
            &["--node-id", "a"],
            &["--partitions", "4"],
            &["--redis", "redis://x", "--partitions", "0"],
            &["--redis", "redis://x", "--partitions", "1025"],
            &["--redis", "redis://x", "--partitions", "x"],
            &["--checkpoint-secs", "0.01"],
            &["--postgres"],
            &["--data-dir", "/tmp/x", "--postgres", "postgres://x@y/z"],
            &["--checkpoint-secs", "-1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    /// With `--jwt-secret`, a reader's token opens the reads but not the writes; the
    /// writers' token (another key) opens the writes.
    #[cfg(feature = "jwt")]
    #[tokio::test]
    async fn with_a_jwt_secret_writes_need_a_writer_token() {
        let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
        seed_dashboard(&engine).unwrap();
        let (app, token) = api_router(&engine, Some("s3cret"), true).unwrap();
        let reader = token.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let status = |req: reqwest::RequestBuilder| async move {
            req.send().await.unwrap().status().as_u16()
        };
        assert_eq!(
            status(client.get(format!("{base}/dashboards/ops"))).await,
            401
        );
        assert_eq!(
            status(
                client
                    .get(format!("{base}/dashboards/ops"))
                    .bearer_auth(&reader)
            )
            .await,
            200
        );
        let event = r#"{"metric_name":"m","value":1,"event_time":1700000000000}"#;
        for token in [None, Some(reader.as_str())] {
            let mut req = client
                .post(format!("{base}/ingest"))
                .header("content-type", "application/json")
                .body(event);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            assert_eq!(status(req).await, 401, "{token:?}");
        }
        let writers = rtdash::transport::JwtAuthenticator::hs256(b"s3cret/writers");
        let writer = writers
            .issue("admin", &["*"], SystemTime::now() + Duration::from_secs(60))
            .unwrap();
        let req = client
            .post(format!("{base}/ingest"))
            .header("content-type", "application/json")
            .body(event)
            .bearer_auth(&writer);
        assert_eq!(status(req).await, 200);
    }

    #[test]
    fn seeded_dashboard_is_valid() {
        let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
        seed_dashboard(&engine).unwrap();
        let doc = engine.dashboards().get("ops").unwrap();
        assert_eq!(doc.dashboard.widgets.len(), 12);
        assert_eq!(doc.alert_rules.len(), 3);
        // Seeding again keeps what is there.
        seed_dashboard(&engine).unwrap();
    }

    #[test]
    fn demo_events_are_accepted() {
        let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
        let mut demo = Demo::new(DemoConfig {
            seed: 1,
            first_incident: Duration::ZERO,
        });
        let start = Timestamp::now();
        for i in 0..50u64 {
            let now = start.saturating_add(DEMO_TICK * u32::try_from(i).unwrap());
            for e in demo.tick(now) {
                engine.ingest_at(e, now).unwrap();
            }
        }
        assert_eq!(demo.incident(), Some(IncidentKind::BadDeploy));
    }
}
