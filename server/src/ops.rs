//! Operations: the Prometheus metrics (`GET /metrics`) and the readiness probe (`GET /readyz`).
//!
//! The metrics live in one registry for the process ([`metrics`]), so the parts that count
//! (connections, document actors, the storage writer, the outbox, the rate limiters, the
//! listener) reach them without being handed anything. Every series is created at start-up with
//! its fixed label values, and each counter is an atomic: counting a sync message is one atomic
//! add, no lock and no lookup. Histograms take a short lock per observation, so they are only
//! used once per storage commit and once per HTTP request, never per sync message. Gauges are
//! read from the server's state when `/metrics` is scraped.
//!
//! No label value ever comes from a user: labels are route templates (axum's matched path, never
//! the raw path), status codes, and the fixed reason, limiter and kind sets below.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::AppState;

/// The content type of the OpenMetrics text format, which Prometheus reads.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long `/readyz` waits for the storage probe before answering 503.
pub const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a sync connection ended, as counted by `labboard_disconnects_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The phone closed, left, or its socket broke.
    ClientLeft,
    /// The phone sent something the protocol does not allow.
    ProtocolError,
    /// The phone sent a message over the size limit.
    TooBig,
    /// The phone read too slowly and its outbox filled up.
    TooFarBehind,
    /// A newer connection with the same peer id replaced it.
    Replaced,
    /// The server closed it: the lab ended or was deleted, or the phone's access expired.
    ClosedByServer,
    /// No frame, not even a pong, for too long.
    Unresponsive,
    /// The server is shutting down.
    Shutdown,
}

impl DisconnectReason {
    const ALL: [Self; 8] = [
        Self::ClientLeft,
        Self::ProtocolError,
        Self::TooBig,
        Self::TooFarBehind,
        Self::Replaced,
        Self::ClosedByServer,
        Self::Unresponsive,
        Self::Shutdown,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::ClientLeft => "client_left",
            Self::ProtocolError => "protocol_error",
            Self::TooBig => "too_big",
            Self::TooFarBehind => "too_far_behind",
            Self::Replaced => "replaced",
            Self::ClosedByServer => "closed_by_server",
            Self::Unresponsive => "unresponsive",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Which limit refused a request, as counted by `labboard_rate_limited_total{limiter}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limiter {
    /// Too many failed join attempts from one address.
    Join,
    /// Too many failed facilitator sign-ins from one address.
    Facilitate,
    /// The total connection cap (`--max-connections`).
    ConnectionsTotal,
    /// The per-address connection cap (`--max-connections-per-address`).
    ConnectionsPerAddress,
}

impl Limiter {
    const ALL: [Self; 4] = [
        Self::Join,
        Self::Facilitate,
        Self::ConnectionsTotal,
        Self::ConnectionsPerAddress,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Facilitate => "facilitate",
            Self::ConnectionsTotal => "connections_total",
            Self::ConnectionsPerAddress => "connections_per_address",
        }
    }
}

/// What failed, as counted by `labboard_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A storage commit failed (disk full, I/O error, read-only database).
    Storage,
    /// A document could not be loaded, or applying a checked change failed.
    Document,
    /// An HTTP request was answered with a 5xx.
    HttpServerError,
    /// A WebSocket upgrade failed after it was accepted.
    WebsocketUpgrade,
}

impl ErrorKind {
    const ALL: [Self; 4] = [
        Self::Storage,
        Self::Document,
        Self::HttpServerError,
        Self::WebsocketUpgrade,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Storage => "storage",
            Self::Document => "document",
            Self::HttpServerError => "http_server_error",
            Self::WebsocketUpgrade => "websocket_upgrade",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

type Labelled = [(&'static str, &'static str); 1];

/// Every series the server exports.
pub struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    documents_loaded: Gauge,
    labs_active: Gauge,
    /// New changes that phones sent and the documents applied.
    pub changes_applied: Counter,
    /// Binary protocol messages read from phones.
    pub messages_received: Counter,
    /// Their bytes.
    pub bytes_received: Counter,
    /// Binary protocol messages written to phones.
    pub messages_sent: Counter,
    /// Their bytes.
    pub bytes_sent: Counter,
    /// Messages an outbox could not take: the connection was closed instead.
    pub outbox_dropped: Counter,
    commit_seconds: Histogram,
    commit_batch_ops: Histogram,
    disconnects: [Counter; DisconnectReason::ALL.len()],
    rate_limited: [Counter; Limiter::ALL.len()],
    errors: [Counter; ErrorKind::ALL.len()],
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabel, Histogram, fn() -> Histogram>,
}

/// Buckets of the HTTP latency histogram: 1 ms to about 8 s.
fn http_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

impl Metrics {
    fn new() -> Self {
        let disconnects = Family::<Labelled, Counter>::default();
        let rate_limited = Family::<Labelled, Counter>::default();
        let errors = Family::<Labelled, Counter>::default();
        let mut metrics = Self {
            registry: Registry::with_prefix("labboard"),
            connections_open: Gauge::default(),
            documents_loaded: Gauge::default(),
            labs_active: Gauge::default(),
            changes_applied: Counter::default(),
            messages_received: Counter::default(),
            bytes_received: Counter::default(),
            messages_sent: Counter::default(),
            bytes_sent: Counter::default(),
            outbox_dropped: Counter::default(),
            // 0.5 ms to about 8 s: a commit is one fsync, and a slow disk shows in the tail.
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            // 1 to 512 ops, the largest batch.
            commit_batch_ops: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            // Every label value exists from the start, and each is a plain atomic afterwards.
            disconnects: DisconnectReason::ALL
                .map(|r| disconnects.get_or_create_owned(&[("reason", r.label())])),
            rate_limited: Limiter::ALL
                .map(|l| rate_limited.get_or_create_owned(&[("limiter", l.label())])),
            errors: ErrorKind::ALL.map(|k| errors.get_or_create_owned(&[("kind", k.label())])),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(http_histogram as fn() -> Histogram),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "connections_open",
            "Open sync (WebSocket) connections",
            metrics.connections_open.clone(),
        );
        registry.register(
            "documents_loaded",
            "Documents loaded in memory",
            metrics.documents_loaded.clone(),
        );
        registry.register(
            "labs_active",
            "Labs with at least one open sync connection",
            metrics.labs_active.clone(),
        );
        registry.register(
            "changes_applied",
            "New changes received from phones and applied to their documents",
            metrics.changes_applied.clone(),
        );
        registry.register(
            "sync_messages_received",
            "Protocol messages received from phones",
            metrics.messages_received.clone(),
        );
        registry.register_with_unit(
            "sync_received",
            "Bytes of protocol messages received from phones",
            Unit::Bytes,
            metrics.bytes_received.clone(),
        );
        registry.register(
            "sync_messages_sent",
            "Protocol messages sent to phones",
            metrics.messages_sent.clone(),
        );
        registry.register_with_unit(
            "sync_sent",
            "Bytes of protocol messages sent to phones",
            Unit::Bytes,
            metrics.bytes_sent.clone(),
        );
        registry.register(
            "outbox_dropped_messages",
            "Messages a connection's outbox could not take; the connection was closed",
            metrics.outbox_dropped.clone(),
        );
        registry.register_with_unit(
            "storage_commit_duration",
            "Time of one storage commit (one transaction and its fsync)",
            Unit::Seconds,
            metrics.commit_seconds.clone(),
        );
        registry.register(
            "storage_commit_batch_ops",
            "Writes committed together in one storage transaction",
            metrics.commit_batch_ops.clone(),
        );
        registry.register(
            "disconnects",
            "Sync connections closed, by reason",
            disconnects,
        );
        registry.register(
            "rate_limited",
            "Requests and connections refused by a limit, by limiter",
            rate_limited,
        );
        registry.register("errors", "Errors, by kind", errors);
        registry.register(
            "http_requests",
            "HTTP requests, by route template and status",
            metrics.http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by route template",
            Unit::Seconds,
            metrics.http_seconds.clone(),
        );
        metrics
    }

    pub fn disconnect(&self, reason: DisconnectReason) {
        self.disconnects[reason as usize].inc();
    }

    pub fn rate_limited(&self, limiter: Limiter) {
        self.rate_limited[limiter as usize].inc();
    }

    /// The counter of `limiter`, for a limiter that counts its own refusals.
    pub fn rate_limited_counter(&self, limiter: Limiter) -> Counter {
        self.rate_limited[limiter as usize].clone()
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].inc();
    }

    /// Records one storage commit of `ops` writes that took `took`.
    pub fn storage_commit(&self, ops: usize, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.commit_batch_ops.observe(ops as f64);
    }

    /// Records a sent protocol message of `bytes` bytes.
    pub fn sent(&self, bytes: usize) {
        self.messages_sent.inc();
        self.bytes_sent.inc_by(bytes as u64);
    }

    /// Records a received protocol message of `bytes` bytes.
    pub fn received(&self, bytes: usize) {
        self.messages_received.inc();
        self.bytes_received.inc_by(bytes as u64);
    }

    /// The whole exposition, with the gauges read from `app` first.
    pub fn render(&self, app: &AppState) -> String {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.connections_open
            .set(gauge(app.connections.load(Ordering::Relaxed)));
        self.documents_loaded.set(gauge(app.registry.open_count()));
        self.labs_active.set(gauge(app.conns.active_labs()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Counts every HTTP request by route template and status, and times it. Runs inside the
/// router, where the matched route is known; a request no route matched counts as `unmatched`.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = metrics();
    let status = response.status();
    if status.is_server_error() {
        metrics.error(ErrorKind::HttpServerError);
    }
    metrics
        .http_seconds
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            status: status.as_u16(),
        })
        .inc();
    response
}

fn exposition(app: &AppState) -> Response {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        metrics().render(app),
    )
        .into_response()
}

/// `GET /metrics` on the main listener: for the organizer only, unless `--metrics-listen`
/// serves the metrics elsewhere (then it is not here at all).
pub async fn metrics_with_token(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match crate::api::require_organizer(&app, &headers) {
        Ok(()) => exposition(&app),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /metrics` on the `--metrics-listen` address: no token.
pub async fn metrics_open(State(app): State<Arc<AppState>>) -> Response {
    exposition(&app)
}

/// How to check that storage takes writes: a row written through a fresh connection and read
/// back.
#[derive(Debug, Clone)]
pub enum ReadyProbe {
    /// The SQLite database file at this path.
    Sqlite(PathBuf),
    /// The PostgreSQL database of this pool.
    Postgres(crate::pg::Pg),
}

impl ReadyProbe {
    async fn run(self) -> Result<(), crate::storage::StorageError> {
        match self {
            Self::Sqlite(path) => {
                tokio::task::spawn_blocking(move || crate::storage::sqlite::write_read_probe(&path))
                    .await
                    .map_err(|err| crate::storage::StorageError::Io(std::io::Error::other(err)))?
            }
            Self::Postgres(pg) => pg.write_read_probe().await,
        }
    }
}

/// The readiness probe's state: whether a probe is still running (a hung one is not joined by
/// more), and what the last one found (so only changes are logged).
#[derive(Debug)]
pub struct Readiness {
    probe: ReadyProbe,
    probing: Arc<AtomicBool>,
    was_ready: AtomicBool,
}

impl Readiness {
    pub fn new(probe: ReadyProbe) -> Self {
        Self {
            probe,
            probing: Arc::new(AtomicBool::new(false)),
            was_ready: AtomicBool::new(true),
        }
    }

    /// Writes a row through a fresh connection with the server's settings and reads it back,
    /// within [`READY_PROBE_TIMEOUT`]. The error says in words why storage is not ready.
    pub async fn probe(&self) -> Result<(), String> {
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(format!(
                "storage did not answer: an earlier probe has been waiting for over {} s",
                READY_PROBE_TIMEOUT.as_secs()
            ));
        }
        let probe = self.probe.clone();
        let probing = Arc::clone(&self.probing);
        let task = tokio::spawn(async move {
            let result = probe.run().await;
            probing.store(false, Ordering::Release);
            result
        });
        match tokio::time::timeout(READY_PROBE_TIMEOUT, task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => Err(format!("storage cannot write: {err}")),
            Ok(Err(join)) => Err(format!("storage probe failed: {join}")),
            Err(_) => Err(format!(
                "storage did not answer a write within {} s",
                READY_PROBE_TIMEOUT.as_secs()
            )),
        }
    }

    /// Logs a change between ready and not ready, once per change.
    fn record(&self, outcome: &Result<(), String>) {
        let ready = outcome.is_ok();
        if self.was_ready.swap(ready, Ordering::AcqRel) != ready {
            match outcome {
                Ok(()) => tracing::info!("ready again: storage answers the write-read probe"),
                Err(reason) => tracing::warn!(reason = %reason, "not ready"),
            }
        }
    }
}

/// `GET /readyz`: 200 `ready` when storage takes a write and reads it back, else 503 with the
/// reason in words.
pub async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let outcome = app.readiness.probe().await;
    app.readiness.record(&outcome);
    let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match outcome {
        Ok(()) => (StatusCode::OK, plain, "ready\n".to_owned()).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            plain,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_label_sets_are_exported_before_anything_happens() {
        let metrics = Metrics::new();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for reason in DisconnectReason::ALL {
            assert!(
                text.contains(&format!(
                    "labboard_disconnects_total{{reason=\"{}\"}} 0",
                    reason.label()
                )),
                "{text}"
            );
        }
        for limiter in Limiter::ALL {
            assert!(text.contains(&format!(
                "labboard_rate_limited_total{{limiter=\"{}\"}} 0",
                limiter.label()
            )));
        }
        for kind in ErrorKind::ALL {
            assert!(text.contains(&format!(
                "labboard_errors_total{{kind=\"{}\"}} 0",
                kind.label()
            )));
        }
        metrics.disconnect(DisconnectReason::TooFarBehind);
        metrics.storage_commit(3, Duration::from_millis(2));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        assert!(text.contains("labboard_disconnects_total{reason=\"too_far_behind\"} 1"));
        assert!(text.contains("labboard_storage_commit_duration_seconds_count 1"));
        assert!(text.contains("labboard_storage_commit_batch_ops_sum 3.0"));
        assert!(text.ends_with("# EOF\n"));
    }
}
