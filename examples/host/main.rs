//! Run with: `cargo run --example host -- [--addr 127.0.0.1:3000]`
//!
//! rtdash inside a host application: an axum app with its own state and routes mounts
//! rtdash's router under `/rt`, checks tokens on reads (`viewer-token`) and writes
//! (`Authorization: Bearer admin-token`), feeds events from its own task, reads a widget's
//! value from Rust (`GET /orders`), serves one `/metrics` from the Prometheus exporter it
//! installed (its own metrics and rtdash's), and shuts down gracefully on Ctrl-C or SIGTERM
//! (streams are closed with 1001).
//!
//! The rtdash-related code is between the `rtdash:` markers: under 40 lines.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusBuilder;
use rtdash::http::{RequireWriters, ServeConfig};
use rtdash::{
    Aggregation, DashboardDoc, Engine, EngineConfig, MemoryStore, MetricEvent, Principal,
    StaticTokens, Timestamp, TopicAccess, TransportConfig, Uuid, Widget,
};

/// The host's own state.
#[derive(Clone)]
struct AppState {
    shop_name: &'static str,
    engine: Engine,
    orders_widget: Uuid,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::args().skip_while(|a| a != "--addr").nth(1) {
        Some(a) => a.parse()?,
        None => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    // The host installs its exporter; rtdash's metrics go into it.
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    // rtdash: an engine with one dashboard defined in code.
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
    let orders = Widget::new("Orders / min", "shop.orders", Aggregation::Count, 60);
    let orders_widget = orders.widget_id;
    let dashboard = DashboardDoc::new("shop", "Shop")?
        .with_widget(orders)
        .with_widget(
            Widget::new("p99 checkout", "shop.checkout_ms", Aggregation::P99, 30).with_unit("ms"),
        );
    engine.dashboards().create(dashboard)?;
    // rtdash: who may read (streams and GETs) and who may change dashboards.
    let viewers = StaticTokens::new()
        .with_token("viewer-token", Principal::new("viewer", TopicAccess::all()));
    let writers =
        StaticTokens::new().with_token("admin-token", Principal::new("admin", TopicAccess::all()));
    let rt = rtdash::http::router(engine.clone(), viewers, TransportConfig::default())
        .layer(RequireWriters::new(writers));
    // rtdash: the refresh scheduler, stopped (and streams closed) by `task.shutdown()`.
    let task = engine.spawn();
    // rtdash: end.

    tokio::spawn(produce(engine.clone()));
    let state = AppState {
        shop_name: "Example shop",
        engine,
        orders_widget,
    };
    let app = Router::new()
        .route(
            "/",
            get(|State(s): State<AppState>| async move { s.shop_name }),
        )
        .route("/orders", get(orders_per_minute))
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .nest("/rt", rt)
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("host: listening on http://{}", listener.local_addr()?);
    rtdash::http::serve(listener, app, ServeConfig::default(), shutdown_signal()).await;
    task.shutdown().await; // rtdash
    println!("host: stopped");
    Ok(())
}

/// A widget's value read from Rust.
async fn orders_per_minute(State(s): State<AppState>) -> String {
    match s.engine.widget_value("shop", s.orders_widget) {
        Ok(state) => format!("{}", state.value.unwrap_or(0.0)),
        Err(e) => format!("error: {e}"),
    }
}

/// The host's own producer: an order every 100 ms, a checkout time with each.
async fn produce(engine: Engine) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for i in 0u32.. {
        tick.tick().await;
        let now = Timestamp::now();
        let events = [
            MetricEvent::new("shop.orders", 1.0, now),
            MetricEvent::new("shop.checkout_ms", 80.0 + f64::from(i % 40), now),
        ];
        for event in events {
            if let Err(e) = engine.ingest(event) {
                eprintln!("host: event refused: {e}");
            }
        }
        metrics::counter!("host_orders_total").increment(1);
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
