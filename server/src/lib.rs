//! The Labboard server: an automerge-repo-compatible sync server with durable storage.
//!
//! Who talks to whom:
//!
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

use std::net::SocketAddr;
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

pub mod config;
pub mod connection;
pub mod document;
pub mod outbox;
pub mod registry;
pub mod storage;

pub use config::Config;

use crate::connection::PeerTable;
use crate::document::ActorSettings;
use crate::registry::Registry;
use crate::storage::{SqliteStorage, Storage, StorageError};

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
    #[error("serving HTTP: {0}")]
    Serve(#[from] std::io::Error),
}

/// Connection-level settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    pub max_frame_bytes: usize,
    pub ping_interval: Duration,
    pub peer_timeout: Duration,
    pub handshake_timeout: Duration,
}

/// What every request handler and connection shares.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub peers: PeerTable,
    pub server_peer: PeerId,
    pub storage_id: String,
    pub settings: ConnSettings,
    pub stop: CancellationToken,
    tracker: TaskTracker,
    next_conn: AtomicU64,
    pub connections: AtomicUsize,
}

/// Serves on `listener` until `shutdown` is cancelled, then shuts down gracefully: connections
/// get a Close frame, document actors write their snapshots, storage is closed.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let store = SqliteStorage::open(&config.data_dir).map_err(|source| ServerError::Storage {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    let store: Arc<dyn Storage> = Arc::new(store);
    let tracker = TaskTracker::new();
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
        },
    );
    let app = Arc::new(AppState {
        registry,
        peers: PeerTable::default(),
        server_peer,
        storage_id: store.storage_id().to_owned(),
        settings: ConnSettings {
            max_frame_bytes: config.max_frame_bytes,
            ping_interval: config.ping_interval,
            peer_timeout: config.peer_timeout,
            handshake_timeout: config.handshake_timeout,
        },
        stop: shutdown.child_token(),
        tracker: tracker.clone(),
        next_conn: AtomicU64::new(1),
        connections: AtomicUsize::new(0),
    });
    tracing::info!(
        data_dir = %config.data_dir.display(),
        storage_id = %app.storage_id,
        server_peer = %app.server_peer,
        max_frame_bytes = config.max_frame_bytes,
        idle_unload = ?config.idle_unload,
        ping_interval = ?config.ping_interval,
        peer_timeout = ?config.peer_timeout,
        "server ready"
    );

    let served = axum::serve(
        listener,
        router(Arc::clone(&app)).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await;

    // Upgraded sockets are ours to wait for: their stop token is a child of `shutdown`.
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
    served.map_err(ServerError::from)
}

/// The HTTP routes.
pub fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/sync", get(sync_socket))
        .route("/healthz", get(health))
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
        .with_state(app)
}

async fn sync_socket(State(app): State<Arc<AppState>>, upgrade: WebSocketUpgrade) -> Response {
    let conn_id = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let limit = app.settings.max_frame_bytes;
    let tracker = app.tracker.clone();
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .on_failed_upgrade(|err| tracing::warn!(error = %err, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            tracker.track_future(connection::serve_socket(socket, app, conn_id).in_current_span())
        })
}

async fn health(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "connections": app.connections.load(Ordering::Relaxed),
        "documentsLoaded": app.registry.open_count(),
        "storageId": app.storage_id,
    }))
}
