//! The Labboard server: an automerge-repo-compatible sync server with durable storage.
//!
//! Who talks to whom:
//!
//! - The [`listener`] accepts connections under a total and a per-address cap and a
//!   header-read timeout, and hands each request to the [`router`].
//! - Every request passes [`access`], which finds the client's address (behind a trusted
//!   reverse proxy, the one it names) and writes the access log.
//! - A phone opens a WebSocket at `/sync`. Its connection task ([`connection`]) does the
//!   handshake and checks every frame at the edge, then forwards sync and ephemeral messages to
//!   the actor of the document they name, over that actor's bounded inbox.
//! - The [`registry`] maps each document id to its actor's handle, starting the actor (which
//!   loads the document from storage) on first use and forgetting it when it unloads after
//!   being idle.
//! - Each document actor ([`document`]) owns the Automerge document and one sync state per
//!   attached connection. It applies what arrives, stores new changes durably ([`storage`]),
//!   and only then sends each peer its next sync message through that connection's outbox
//!   ([`outbox`]), which it never waits on: a peer that falls too far behind is disconnected.
//! - [`run`] serves until the shutdown token fires, then closes connections, lets actors write
//!   their final snapshots, and closes storage.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use labboard_protocol::PeerId;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub mod access;
pub mod acme;
pub mod api;
pub mod backup;
pub(crate) mod boardread;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod document;
pub mod export;
pub mod healthcheck;
pub mod ingest;
pub mod labs;
pub mod listener;
pub mod ops;
pub mod organizer;
pub mod outbox;
pub mod pg;
pub mod photometa;
pub mod photos;
pub mod ratelimit;
pub mod record;
pub mod registry;
pub mod secrets;
pub mod storage;
pub mod stores;
pub mod tls;
pub mod urls;
pub mod web;
pub mod zipfile;

pub use config::Config;

use crate::cluster::NodeEvent;
use crate::connection::ConnTable;
use crate::document::ActorSettings;
use crate::labs::{LabError, LabStore};
use crate::photos::PhotoStore;
use crate::ratelimit::FailureLimiter;
use crate::registry::Registry;
use crate::storage::{Storage, StorageError};
use crate::stores::Stores;

/// How long shutdown waits for connections and document actors to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// WebSocket read buffer per connection. Phones send small frames; larger ones grow it.
const WS_READ_BUFFER_BYTES: usize = 8 * 1024;
/// WebSocket write buffer per connection before a flush is forced.
const WS_WRITE_BUFFER_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening storage in {dir}: {source}")]
    Storage {
        dir: String,
        #[source]
        source: StorageError,
    },
    #[error("opening the database {url}: {source}")]
    Database {
        /// Without its password.
        url: String,
        #[source]
        source: StorageError,
    },
    #[error("opening the lab tables: {0}")]
    Labs(#[from] LabError),
    #[error("reading or creating the organizer token in {dir}: {source}")]
    OrganizerToken {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listening for metrics on {addr}: {source}")]
    MetricsListener {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the listening address: {0}")]
    Listener(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
}

/// Connection-level settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    pub max_frame_bytes: usize,
    pub ping_interval: Duration,
    pub peer_timeout: Duration,
    pub handshake_timeout: Duration,
}

/// Limits on photos (`--max-photo-bytes`, `--max-lab-photo-bytes`).
#[derive(Debug, Clone, Copy)]
pub struct PhotoLimits {
    /// Largest photo accepted, in bytes.
    pub max_photo_bytes: usize,
    /// Most bytes the photos of one lab may take in all.
    pub max_lab_photo_bytes: u64,
}

/// What every request handler and connection shares.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Storage>,
    pub labs: LabStore,
    pub photos: PhotoStore,
    pub photo_limits: PhotoLimits,
    pub conns: ConnTable,
    pub organizer_token_hash: Vec<u8>,
    pub join_limiter: FailureLimiter,
    pub facilitate_limiter: FailureLimiter,
    /// Base of the links phones open, e.g. `http://192.168.1.20:8080`.
    pub public_base: String,
    pub server_peer: PeerId,
    pub storage_id: String,
    pub settings: ConnSettings,
    /// How long an ended lab is kept before the sweep deletes it (`--retention`); `None` keeps
    /// it until someone deletes it.
    pub retention: Option<Duration>,
    pub stop: CancellationToken,
    tracker: TaskTracker,
    next_conn: AtomicU64,
    pub connections: AtomicUsize,
    /// Proxies whose forwarding headers name the client (`--trusted-proxy`).
    pub trusted_proxies: access::TrustedProxies,
    /// The `/readyz` probe's state.
    pub readiness: ops::Readiness,
}

/// Serves on `listener` until `shutdown` is cancelled, then shuts down gracefully: connections
/// get a Close frame, document actors write their snapshots, storage is closed. With
/// `--tls-cert`/`--tls-key` it serves HTTPS, loading the files here.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let certs = match config.tls_files()? {
        Some(files) => Some(tls::CertStore::open(files)?),
        None => None,
    };
    run_with_tls(listener, config, certs, shutdown).await
}

/// [`run`] with the certificate store already opened (by the binary, which reloads it on
/// SIGHUP); `None` serves plain HTTP.
pub async fn run_with_tls(
    listener: TcpListener,
    config: Config,
    certs: Option<Arc<tls::CertStore>>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    // First, so that an address already taken stops the start before anything else is done.
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::MetricsListener { addr, source })?,
        ),
        None => None,
    };
    let stores = Stores::open(&config).await?;
    serve(listener, config, stores, metrics_listener, certs, shutdown).await
}

/// Serves on `listener` with the stores given, as [`run_with_tls`] describes.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    stores: Stores,
    metrics_listener: Option<TcpListener>,
    certs: Option<Arc<tls::CertStore>>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let Stores {
        documents: store,
        labs,
        photos,
        ready_probe,
        shared,
        location,
    } = stores;
    let organizer_token = secrets::organizer_token(
        config.admin_token.as_deref(),
        config.admin_token_file.as_deref(),
        &config.data_dir,
    )
    .map_err(|source| ServerError::OrganizerToken {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    if shared.is_some() && config.admin_token.is_none() && config.admin_token_file.is_none() {
        tracing::warn!(
            "the organizer token is this node's own (kept in its data directory): give every \
             node sharing the database the same one (LABBOARD_ADMIN_TOKEN or --admin-token-file), \
             or the organizer's link works only through this node"
        );
    }
    remove_orphans(&labs, store.as_ref()).await?;
    let bound = listener.local_addr()?;
    let limits = http_limits(&config);
    let tracker = TaskTracker::new();
    let acme = acme::AcmeSettings::of(&config);
    let server_tls = match (&certs, &acme) {
        (Some(certs), _) => Some(certs.server_tls()?),
        (None, Some(acme)) => Some(acme::start(
            acme,
            &config.data_dir,
            &tracker,
            shutdown.child_token(),
        )?),
        (None, None) => None,
    };
    let public_base = match (&acme, config.public_url.as_deref()) {
        (Some(acme), None) => urls::acme_base(&acme.domains[0], bound),
        (_, configured) => {
            urls::public_base_with(configured, bound, urls::Scheme::of(server_tls.is_some()))
        }
    };
    let server_peer = PeerId::new(format!(
        "labboard-{}",
        store.storage_id().split('-').next().unwrap_or("server")
    ));
    let registry = Registry::new(
        server_peer.clone(),
        Arc::clone(&store),
        tracker.clone(),
        shutdown.child_token(),
        ActorSettings {
            idle_unload_after: config.idle_unload,
            compact_after_chunks: config.compact_after_chunks,
        },
    );
    end_ended_boards(&registry, &labs.list().await?).await;
    let app = Arc::new(AppState {
        registry,
        store: Arc::clone(&store),
        labs,
        photos,
        photo_limits: PhotoLimits {
            max_photo_bytes: config.max_photo_bytes,
            max_lab_photo_bytes: config.max_lab_photo_bytes,
        },
        conns: ConnTable::default(),
        organizer_token_hash: secrets::hash(&organizer_token),
        join_limiter: FailureLimiter::new(api::MAX_FAILED_ATTEMPTS, api::FAILED_ATTEMPT_WINDOW)
            .counting(ops::metrics().rate_limited_counter(ops::Limiter::Join)),
        facilitate_limiter: FailureLimiter::new(
            api::MAX_FAILED_ATTEMPTS,
            api::FAILED_ATTEMPT_WINDOW,
        )
        .counting(ops::metrics().rate_limited_counter(ops::Limiter::Facilitate)),
        public_base,
        server_peer,
        storage_id: store.storage_id().to_owned(),
        settings: ConnSettings {
            max_frame_bytes: config.max_frame_bytes,
            ping_interval: config.ping_interval,
            peer_timeout: config.peer_timeout,
            handshake_timeout: config.handshake_timeout,
        },
        retention: config.retention,
        stop: shutdown.child_token(),
        tracker: tracker.clone(),
        next_conn: AtomicU64::new(1),
        connections: AtomicUsize::new(0),
        trusted_proxies: access::TrustedProxies::new(config.trusted_proxy.clone()),
        readiness: ops::Readiness::new(ready_probe),
    });
    tracing::info!(
        data_dir = %config.data_dir.display(),
        database = %location,
        storage_id = %app.storage_id,
        server_peer = %app.server_peer,
        max_frame_bytes = config.max_frame_bytes,
        max_photo_bytes = config.max_photo_bytes,
        max_lab_photo_bytes = config.max_lab_photo_bytes,
        idle_unload = ?config.idle_unload,
        ping_interval = ?config.ping_interval,
        peer_timeout = ?config.peer_timeout,
        token_ttl = ?config.token_ttl,
        public_base = %app.public_base,
        header_read_timeout = ?limits.header_read_timeout,
        max_connections = limits.max_connections,
        max_connections_per_address = limits.max_connections_per_address,
        tls = server_tls.is_some(),
        "server ready"
    );

    if !config.trusted_proxy.is_empty() {
        let ranges: Vec<String> = config.trusted_proxy.iter().map(|r| r.to_string()).collect();
        tracing::info!(
            trusted_proxies = %ranges.join(","),
            "forwarding headers are believed from these proxies"
        );
    }

    if let Some(pg) = shared {
        let (events_tx, events) = tokio::sync::mpsc::channel(NODE_EVENTS_QUEUE);
        tracker.spawn(cluster::listen(pg, events_tx, shutdown.child_token()));
        tracker.spawn(follow_other_nodes(Arc::clone(&app), events));
    }

    if let Some(retention) = config.retention {
        tracker.spawn(retention_sweep(
            Arc::clone(&app),
            retention,
            shutdown.child_token(),
        ));
    }

    let metrics_on_main = match metrics_listener {
        Some(metrics_listener) => {
            let bound = metrics_listener.local_addr()?;
            // Tests and scripts read this line to find the metrics port.
            println!("labboard metrics on http://{bound}/metrics");
            tracing::info!(%bound, "metrics served without a token on a separate address");
            tracker.spawn(serve_metrics(
                metrics_listener,
                Arc::clone(&app),
                shutdown.clone(),
            ));
            false
        }
        None => true,
    };

    listener::serve_with_tls(
        listener,
        router_with(Arc::clone(&app), metrics_on_main),
        limits,
        server_tls,
        shutdown.clone(),
        tracker.clone(),
    )
    .await;

    // Connections and upgraded sockets are ours to wait for: their stop tokens are children of
    // `shutdown`.
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = tracker.len(),
            "shutdown grace period over; some tasks did not finish"
        );
    }
    if let Err(err) = store.close().await {
        tracing::error!(error = %err, "closing storage failed");
    }
    tracing::info!("server stopped");
    Ok(())
}

/// The HTTP limits of `config`, the total cap lowered to fit the open-file limit.
fn http_limits(config: &Config) -> listener::HttpLimits {
    let open_file_limit = listener::open_file_limit();
    let max_connections = listener::fitting_connection_cap(config.max_connections, open_file_limit);
    if max_connections < config.max_connections {
        tracing::warn!(
            configured = config.max_connections,
            open_file_limit,
            max_connections,
            "the connection cap is lowered to fit the open-file limit; raise `ulimit -n` to allow more"
        );
    }
    listener::HttpLimits {
        header_read_timeout: config.header_read_timeout,
        max_connections,
        max_connections_per_address: config.max_connections_per_address,
    }
}

/// Longest pause between two retention sweeps; a shorter retention sweeps as often as it lasts.
const RETENTION_SWEEP_EVERY_MAX: Duration = Duration::from_secs(60);

/// Deletes, now and then until shutdown, every lab ended longer than `retention` ago, exactly
/// as `DELETE /api/labs/{labId}` does.
async fn retention_sweep(app: Arc<AppState>, retention: Duration, stop: CancellationToken) {
    let every = retention.min(RETENTION_SWEEP_EVERY_MAX);
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        let cutoff = labs::now_ms().saturating_sub(retention_ms);
        match app.labs.ended_before(cutoff).await {
            Ok(expired) => {
                for lab in expired {
                    if let Err(err) = api::remove_lab(&app, &lab).await {
                        tracing::error!(lab_id = %lab.lab_id, doc_id = %lab.doc_id, error = %err, "deleting a lab past its retention failed; retried at the next sweep");
                    } else {
                        tracing::info!(lab_id = %lab.lab_id, ?retention, "lab deleted after its retention");
                    }
                }
            }
            Err(err) => tracing::error!(error = %err, "listing labs past their retention failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// What the other nodes said, waiting to be acted on.
const NODE_EVENTS_QUEUE: usize = 4096;

/// Acts on what other nodes sharing the database did: takes in the parts they stored of the
/// documents open here, closes the sockets of labs they deleted, makes read-only the boards of
/// labs they ended.
async fn follow_other_nodes(
    app: Arc<AppState>,
    mut events: tokio::sync::mpsc::Receiver<NodeEvent>,
) {
    while let Some(event) = events.recv().await {
        match event {
            NodeEvent::Stored(doc_id) => app.registry.stored_elsewhere(doc_id),
            NodeEvent::LabDeleted { lab_id, doc_id } => {
                app.conns.kick_lab(&lab_id, "this lab was deleted");
                app.registry.stop_deleted(doc_id).await;
                tracing::info!(lab_id = %lab_id, doc_id = %doc_id, "lab deleted on another node");
            }
            NodeEvent::LabEnded { lab_id, doc_id } => {
                app.registry.end(doc_id).await;
                tracing::info!(lab_id = %lab_id, doc_id = %doc_id, "lab ended on another node");
            }
            NodeEvent::Missed => {
                app.registry.all_stored_elsewhere();
                if let Err(err) = catch_up_on_labs(&app).await {
                    tracing::error!(error = %err, "reading the labs after missed notifications failed");
                }
            }
        }
    }
}

/// After notifications may have been missed: the labs deleted meanwhile lose their sockets
/// here, those ended meanwhile become read-only.
async fn catch_up_on_labs(app: &AppState) -> Result<(), LabError> {
    let labs = app.labs.list().await?;
    end_ended_boards(&app.registry, &labs).await;
    let existing: std::collections::HashSet<&str> =
        labs.iter().map(|lab| lab.lab_id.as_str()).collect();
    for lab_id in app.conns.lab_ids() {
        if !existing.contains(lab_id.as_str()) {
            app.conns.kick_lab(&lab_id, "this lab was deleted");
            tracing::info!(lab_id = %lab_id, "lab deleted on another node");
        }
    }
    Ok(())
}

/// Makes the boards of the ended labs among `labs` read-only here, those not yet.
async fn end_ended_boards(registry: &Registry, labs: &[labs::Lab]) {
    for lab in labs {
        if lab.ended_at.is_some() && !registry.is_ended(lab.doc_id) {
            registry.end(lab.doc_id).await;
        }
    }
}

/// Deletes documents no lab owns (see [`LabStore::orphan_documents`]).
async fn remove_orphans(labs: &LabStore, store: &dyn Storage) -> Result<(), ServerError> {
    for doc_id in labs.orphan_documents().await? {
        tracing::warn!(doc_id = %doc_id, "removing a document that belongs to no lab");
        store.delete(doc_id).await.map_err(LabError::from)?;
    }
    Ok(())
}

impl AppState {
    /// The link a phone opens to join with `code`.
    pub fn join_url(&self, code: &str) -> String {
        format!("{}/j/{code}", self.public_base)
    }
}

/// Serves `/metrics` without a token, and `/readyz`, on the `--metrics-listen` address until
/// `shutdown` fires.
async fn serve_metrics(listener: TcpListener, app: Arc<AppState>, shutdown: CancellationToken) {
    let routes = Router::new()
        .route("/metrics", get(ops::metrics_open))
        .route("/readyz", get(ops::readyz))
        .with_state(app);
    if let Err(err) = axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %err, "the metrics listener failed");
    }
}

/// The HTTP routes, with `/metrics` behind the organizer token.
pub fn router(app: Arc<AppState>) -> Router {
    router_with(app, true)
}

/// The HTTP routes; `/metrics` (behind the organizer token) only if `with_metrics`.
fn router_with(app: Arc<AppState>, with_metrics: bool) -> Router {
    let routes = Router::new()
        .route("/sync", get(sync_socket))
        .route("/healthz", get(health));
    let routes = if with_metrics {
        routes.route("/metrics", get(ops::metrics_with_token))
    } else {
        routes
    };
    routes
        .merge(api::routes())
        // Photos have their own body limit, not the API's.
        .merge(api::photo_routes(app.photo_limits.max_photo_bytes))
        .merge(web::routes())
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            access::log_request,
        ))
        .layer(axum::middleware::from_fn(ops::track_http))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<_>| {
                    // The matched route only: query strings may carry credentials.
                    let path = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("unmatched", axum::extract::MatchedPath::as_str);
                    tracing::debug_span!("http", method = %request.method(), path = %path)
                },
            ),
        )
        // Outside the trace layer: a probe every few seconds would log a line each time, and
        // an error for each 503; the probe logs its changes between ready and not ready itself.
        .route(
            "/readyz",
            get(ops::readyz).layer(axum::middleware::from_fn(ops::track_http)),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Headers every answer carries: no MIME sniffing, no framing, no referrer (join links carry
/// codes).
async fn security_headers(mut response: Response) -> Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /sync?token=…`: the token is checked before the upgrade, since browsers cannot send
/// headers with a WebSocket.
async fn sync_socket(
    State(app): State<Arc<AppState>>,
    query: axum::extract::RawQuery,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let param = |name: &str| {
        query.0.as_deref().and_then(|query| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == name).then_some(value)
            })
        })
    };
    let token = param("token");
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return api::ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "missing token: join the lab first",
        )
        .into_response();
    };
    let grant = match app.labs.grant(token).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return api::ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "invalid or expired token: join the lab again",
            )
            .into_response()
        }
        Err(err) => return api::ApiError::from(err).into_response(),
    };
    // The lab named in the URL is what a proxy in front of several nodes routes by; a token of
    // another lab would land the phone on a node chosen for the wrong lab.
    if param("lab").is_some_and(|lab| lab != grant.lab_id) {
        return api::ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "this token is for another lab than the one named in the address",
        )
        .into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return api::ApiError::new(
                rejection.status(),
                format!("not a WebSocket upgrade: {}", rejection.body_text()),
            )
            .into_response()
        }
    };
    let conn_id = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let limit = app.settings.max_frame_bytes;
    let tracker = app.tracker.clone();
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .on_failed_upgrade(|err| {
            ops::metrics().error(ops::ErrorKind::WebsocketUpgrade);
            tracing::warn!(error = %err, "websocket upgrade failed");
        })
        .on_upgrade(move |socket| {
            tracker.track_future(
                connection::serve_socket(socket, app, conn_id, grant).in_current_span(),
            )
        })
}

/// A known path with a method it does not have; axum adds the `Allow` header.
async fn method_not_allowed(method: axum::http::Method) -> api::ApiError {
    api::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on this path"),
    )
}

async fn health(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "connections": app.connections.load(Ordering::Relaxed),
        "documentsLoaded": app.registry.open_count(),
        "documentsWaitingForStorage": app.registry.waiting_for_storage(),
        "storageId": app.storage_id,
    }))
}
