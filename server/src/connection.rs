//! One task per WebSocket: the handshake, checks at the edge, and the way to and from the
//! document actors.
//!
//! The task `select!`s over its stop signals, its outbox (filled by actors), the next frame and a
//! ping timer. Frames are checked here (decoding, handshake state, peer ids, sync bytes) so
//! that actors only ever see well-formed input. Any bad frame ends this connection with an
//! `error` message and touches nothing else.
//!
//! Backpressure: the socket is read only while the outbox is empty and no frame is waiting for
//! a busy actor, so a phone that writes faster than the server answers is slowed by TCP. While
//! it waits for an actor the task still writes its outbox. The outbox can therefore only fill
//! while a write to the phone is blocked, that is when the phone has stopped reading; then the
//! actor disconnects it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use automerge::sync;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::{SinkExt, StreamExt};
use labboard_protocol::{decode, encode, DocumentId, Message, PeerId, PeerMetadata};
use tokio::time::{interval_at, sleep_until, Instant};
use tracing::field::{display, Empty};

use crate::document::{ConnId, DocCommand, DocHandle, SyncKind};
use crate::ingest::Writer;
use crate::labs::Grant;
use crate::ops::DisconnectReason;
use crate::outbox::{Kick, Outbox, OutboxReceiver, Outgoing, TOO_FAR_BEHIND};
use crate::AppState;

/// Documents one connection may have open at once; a phone needs one or two.
pub const MAX_DOCS_PER_CONNECTION: usize = 256;

/// Messages written before one flush when the outbox has a backlog.
const MAX_WRITE_BATCH: usize = 64;

/// How long we wait for a client to answer our Close frame before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How a connection replaced by a newer one of the same peer is told, first.
const REPLACED: &str = "replaced";

/// WebSocket close codes.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;

/// Why a connection ends.
#[derive(Debug)]
enum Ending {
    /// The client closed, left, or the socket broke.
    ClientLeft(String),
    /// The client sent something we refuse: tell it, then close.
    Refused { message: String, code: u16 },
    /// An actor or a newer connection asked us to close.
    Kicked(String),
    /// No frame, not even a pong, for too long.
    Unresponsive,
    /// The server is shutting down.
    Stopping,
}

impl Ending {
    /// The metrics' word for this ending.
    fn reason(&self) -> DisconnectReason {
        match self {
            Self::ClientLeft(_) => DisconnectReason::ClientLeft,
            Self::Refused { code, .. } if *code == CLOSE_TOO_BIG => DisconnectReason::TooBig,
            Self::Refused { .. } => DisconnectReason::ProtocolError,
            Self::Kicked(why) if why.starts_with(TOO_FAR_BEHIND) => DisconnectReason::TooFarBehind,
            Self::Kicked(why) if why.starts_with(REPLACED) => DisconnectReason::Replaced,
            Self::Kicked(_) => DisconnectReason::ClosedByServer,
            Self::Unresponsive => DisconnectReason::Unresponsive,
            Self::Stopping => DisconnectReason::Shutdown,
        }
    }

    fn refused(message: impl Into<String>) -> Self {
        Self::Refused {
            message: message.into(),
            code: CLOSE_POLICY,
        }
    }
}

/// Who is connected: by lab, so deleting a lab closes its sockets, and by (lab, peer id), so
/// a reconnecting phone replaces its stale socket without anyone reaching into another lab.
#[derive(Default)]
pub struct ConnTable {
    // std Mutex: map operations only, never across an await.
    inner: std::sync::Mutex<ConnMaps>,
}

#[derive(Default)]
struct ConnMaps {
    by_lab: HashMap<String, HashMap<ConnId, Arc<Kick>>>,
    by_peer: HashMap<(String, PeerId), (ConnId, Arc<Kick>)>,
}

impl ConnTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConnMaps> {
        self.inner
            .lock()
            .expect("connection table lock is never held across a panic")
    }

    fn add(&self, lab_id: &str, conn: ConnId, kick: Arc<Kick>) {
        self.lock()
            .by_lab
            .entry(lab_id.to_owned())
            .or_default()
            .insert(conn, kick);
    }

    fn register_peer(&self, lab_id: &str, peer: &PeerId, conn: ConnId, kick: Arc<Kick>) {
        let old = self
            .lock()
            .by_peer
            .insert((lab_id.to_owned(), peer.clone()), (conn, kick));
        if let Some((old_conn, old_kick)) = old {
            tracing::info!(
                old_conn_id = old_conn,
                "peer reconnected; closing its old connection"
            );
            old_kick.fire(format!(
                "{REPLACED} by a newer connection with the same peer id"
            ));
        }
    }

    fn remove(&self, lab_id: &str, peer: Option<&PeerId>, conn: ConnId) {
        let mut maps = self.lock();
        if let Some(conns) = maps.by_lab.get_mut(lab_id) {
            conns.remove(&conn);
            if conns.is_empty() {
                maps.by_lab.remove(lab_id);
            }
        }
        if let Some(peer) = peer {
            let key = (lab_id.to_owned(), peer.clone());
            if maps.by_peer.get(&key).is_some_and(|(c, _)| *c == conn) {
                maps.by_peer.remove(&key);
            }
        }
    }

    /// Closes every connection of a lab.
    pub fn kick_lab(&self, lab_id: &str, reason: &str) {
        let conns = self.lock().by_lab.remove(lab_id).unwrap_or_default();
        for kick in conns.values() {
            kick.fire(reason);
        }
    }

    /// Labs with at least one open connection.
    /// The labs with connections here.
    pub fn lab_ids(&self) -> Vec<String> {
        self.lock().by_lab.keys().cloned().collect()
    }

    pub fn active_labs(&self) -> usize {
        self.lock().by_lab.len()
    }

    /// Open connections of a lab.
    pub fn lab_count(&self, lab_id: &str) -> usize {
        self.lock().by_lab.get(lab_id).map_or(0, HashMap::len)
    }
}

/// The protocol state of one connection.
struct Session {
    conn_id: ConnId,
    app: Arc<AppState>,
    /// What the connection's token allows: one lab, one role.
    grant: Grant,
    peer_id: Option<PeerId>,
    docs: HashMap<DocumentId, DocHandle>,
    outbox: Outbox,
    kick: Arc<Kick>,
}

#[tracing::instrument(
    name = "conn",
    skip_all,
    fields(conn_id = conn_id, lab_id = %grant.lab_id, role = %grant.role, peer_id = Empty)
)]
pub async fn serve_socket(socket: WebSocket, app: Arc<AppState>, conn_id: ConnId, grant: Grant) {
    app.connections.fetch_add(1, Ordering::Relaxed);
    let (outbox, mut outbox_rx, kick) = Outbox::new();
    app.conns.add(&grant.lab_id, conn_id, Arc::clone(&kick));
    let expires = Instant::now() + grant.remaining();
    let mut session = Session {
        conn_id,
        app: Arc::clone(&app),
        grant,
        peer_id: None,
        docs: HashMap::new(),
        outbox,
        kick: Arc::clone(&kick),
    };
    let (mut sink, mut stream) = socket.split();
    let stop = app.stop.clone();
    let settings = &app.settings;
    let handshake_deadline = Instant::now() + settings.handshake_timeout;
    let mut pings = interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    let mut last_heard = Instant::now();
    tracing::debug!("connection opened");

    let ending = loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break Ending::Stopping,
            reason = kick.fired() => break Ending::Kicked(reason.to_owned()),
            // What actors queued for the phone goes out before its next frame is read, so a
            // phone that writes faster than we answer is slowed by TCP instead of its outbox
            // filling up. Only a phone that stops reading can fill it: then this write blocks.
            Some(out) = outbox_rx.recv() => {
                let written = write_outgoing(&mut sink, &mut outbox_rx, out);
                match guarded(&stop, &kick, settings.peer_timeout, written).await {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(ending))) | Err(ending) => break ending,
                    Ok(Err(err)) => break Ending::ClientLeft(err),
                }
            }
            frame = stream.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        crate::ops::metrics().received(bytes.len());
                        let handled = writing_meanwhile(
                            session.on_frame(&bytes),
                            &mut sink,
                            &mut outbox_rx,
                            (&stop, &kick, settings.peer_timeout),
                        );
                        let replies = match handled.await {
                            Ok(Ok(replies)) => replies,
                            Ok(Err(ending)) | Err(ending) => break ending,
                        };
                        // Time spent waiting for a busy document is our silence, not the
                        // phone's: its pongs were not read meanwhile.
                        last_heard = Instant::now();
                        let sent = send_all(&mut sink, replies);
                        match guarded(&stop, &kick, settings.peer_timeout, sent).await {
                            Ok(Ok(())) => {}
                            Ok(Err(err)) => break Ending::ClientLeft(err),
                            Err(ending) => break ending,
                        }
                    }
                    Some(Ok(WsMessage::Text(_))) => break Ending::refused(
                        "text frames are not part of the protocol: send binary CBOR frames",
                    ),
                    // tungstenite answers pings itself; a pong only proves the peer is alive.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    Some(Ok(WsMessage::Close(_))) | None => {
                        break Ending::ClientLeft("client closed".into())
                    }
                    Some(Err(err)) => break classify_read_error(&err, settings.max_frame_bytes),
                }
            }
            _ = pings.tick() => {
                if last_heard.elapsed() >= settings.peer_timeout {
                    break Ending::Unresponsive;
                }
                let ping = sink.send(WsMessage::Ping(Default::default()));
                match guarded(&stop, &kick, settings.peer_timeout, ping).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => break Ending::ClientLeft(err.to_string()),
                    Err(ending) => break ending,
                }
            }
            () = sleep_until(expires) => {
                break Ending::Kicked("your access to this lab expired; join it again".into());
            }
            () = sleep_until(handshake_deadline), if session.peer_id.is_none() => {
                break Ending::refused(format!(
                    "expected a join message within {} s",
                    settings.handshake_timeout.as_secs_f32()
                ));
            }
        }
    };

    session.finish(&ending).await;
    crate::ops::metrics().disconnect(ending.reason());
    let (error, close) = match &ending {
        Ending::ClientLeft(reason) => {
            tracing::debug!(reason = %reason, "connection closed by client");
            (None, None)
        }
        Ending::Refused { message, code } => {
            tracing::warn!(reason = %message, "refused client input; closing connection");
            (Some(message.clone()), Some((*code, "protocol error")))
        }
        Ending::Kicked(reason) => {
            tracing::warn!(reason = %reason, "closing connection");
            (
                Some(reason.clone()),
                Some((CLOSE_POLICY, "closed by server")),
            )
        }
        Ending::Unresponsive => {
            tracing::warn!(
                silent_for = ?last_heard.elapsed(),
                "no answer to pings; dropping connection"
            );
            (None, None)
        }
        Ending::Stopping => (None, Some((CLOSE_GOING_AWAY, "server shutting down"))),
    };
    let farewell = async {
        if let Some(message) = error {
            let frame = Message::Error {
                sender_id: Some(app.server_peer.clone()),
                target_id: session.peer_id.clone(),
                message,
            };
            sink.send(WsMessage::Binary(encode(&frame).into())).await?;
        }
        if let Some((code, reason)) = close {
            let close = WsMessage::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            sink.send(close).await?;
            // Let the client read our frames and answer the close, so that closing with unread
            // input does not reset the connection and lose the error message on the way.
            while let Some(Ok(_)) = stream.next().await {}
        }
        Ok::<(), axum::Error>(())
    };
    // Best effort, and bounded: a client that stopped reading cannot hold the task.
    let _said_goodbye = tokio::time::timeout(CLOSE_GRACE, farewell).await;
    app.connections.fetch_sub(1, Ordering::Relaxed);
}

impl Session {
    /// Handles one binary frame; returns replies to send, or why the connection must end.
    async fn on_frame(&mut self, bytes: &[u8]) -> Result<Vec<Message>, Ending> {
        let message = decode(bytes).map_err(|err| Ending::refused(err.to_string()))?;
        tracing::debug!(kind = message.kind(), "received");
        let Some(peer_id) = self.peer_id.clone() else {
            return match message {
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    ..
                } => self.join(sender_id, supported_protocol_versions.as_deref()),
                other => Err(Ending::refused(format!(
                    "expected a join message, received `{}`",
                    other.kind()
                ))),
            };
        };
        if let Some(sender) = message.sender_id() {
            if *sender != peer_id {
                if matches!(message, Message::Ephemeral { .. }) {
                    // automerge-repo clients pass on presence they received, under its
                    // author's id: never relayed, since a phone speaks only for itself.
                    tracing::debug!(sender_id = %sender, "dropped ephemeral message of another peer");
                    return Ok(Vec::new());
                }
                return Err(Ending::refused(format!(
                    "peer ID mismatch: expected {peer_id}, received {sender}"
                )));
            }
        }
        if let Some(target) = message.target_id() {
            if *target != self.app.server_peer {
                return Err(Ending::refused(format!(
                    "target peer ID mismatch: expected {}, received {target}",
                    self.app.server_peer
                )));
            }
        }
        match message {
            Message::Join { .. } | Message::Peer { .. } => {
                Err(Ending::refused("unexpected join or peer message"))
            }
            Message::Sync {
                document_id, data, ..
            } => self.sync(peer_id, document_id, SyncKind::Sync, &data).await,
            Message::Request {
                document_id, data, ..
            } => {
                self.sync(peer_id, document_id, SyncKind::Request, &data)
                    .await
            }
            Message::Ephemeral {
                sender_id,
                count,
                session_id,
                document_id,
                data,
                ..
            } => {
                // Relayed only among peers syncing the document, as the JS server does.
                if self.docs.contains_key(&document_id) {
                    let command = DocCommand::Ephemeral {
                        conn: self.conn_id,
                        sender_id,
                        session_id,
                        count,
                        data,
                    };
                    self.forward(document_id, command).await?;
                }
                Ok(Vec::new())
            }
            Message::Error { message, .. } => {
                Err(Ending::ClientLeft(format!("client sent error: {message}")))
            }
            Message::Leave { .. } => Err(Ending::ClientLeft("client left".into())),
            // We never request documents from clients, and heads gossip is opt-in and unused.
            Message::DocUnavailable { .. }
            | Message::RemoteSubscriptionChange { .. }
            | Message::RemoteHeadsChanged { .. } => Ok(Vec::new()),
        }
    }

    fn join(
        &mut self,
        sender_id: PeerId,
        versions: Option<&[String]>,
    ) -> Result<Vec<Message>, Ending> {
        let supported = versions.is_none_or(|versions| {
            versions
                .iter()
                .any(|v| v == labboard_protocol::PROTOCOL_VERSION)
        });
        if !supported {
            return Err(Ending::refused("unsupported protocol version"));
        }
        tracing::Span::current().record("peer_id", display(&sender_id));
        tracing::info!("peer joined");
        self.app.conns.register_peer(
            &self.grant.lab_id,
            &sender_id,
            self.conn_id,
            Arc::clone(&self.kick),
        );
        self.peer_id = Some(sender_id.clone());
        Ok(vec![Message::Peer {
            sender_id: self.app.server_peer.clone(),
            target_id: sender_id,
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(self.app.storage_id.clone()),
                is_ephemeral: Some(false),
            }),
            selected_protocol_version: labboard_protocol::PROTOCOL_VERSION.into(),
        }])
    }

    async fn sync(
        &mut self,
        peer_id: PeerId,
        document_id: DocumentId,
        kind: SyncKind,
        data: &[u8],
    ) -> Result<Vec<Message>, Ending> {
        if document_id != self.grant.doc_id {
            // Outside this lab: answered exactly as a document that does not exist, so nothing
            // about other labs can be learned; clients cannot create documents either.
            tracing::debug!(doc_id = %document_id, "document outside the lab; unavailable");
            return Ok(vec![Message::DocUnavailable {
                sender_id: self.app.server_peer.clone(),
                target_id: peer_id,
                document_id,
            }]);
        }
        if data.is_empty() {
            return Err(Ending::refused(format!(
                "empty sync data for document {document_id}"
            )));
        }
        let message = sync::Message::decode(data).map_err(|err| {
            Ending::refused(format!(
                "undecodable sync data for document {document_id}: {err}"
            ))
        })?;
        if !self.docs.contains_key(&document_id) && self.docs.len() >= MAX_DOCS_PER_CONNECTION {
            return Err(Ending::refused(format!(
                "too many documents on one connection (limit {MAX_DOCS_PER_CONNECTION})"
            )));
        }
        let command = DocCommand::Sync {
            conn: self.conn_id,
            peer_id,
            writer: Writer {
                role: self.grant.role,
                author_id: self.grant.author_id.clone(),
                name: self.grant.name.clone(),
            },
            outbox: self.outbox.clone(),
            kind,
            message,
        };
        self.forward(document_id, command).await?;
        Ok(Vec::new())
    }

    /// Sends a command to the document's actor, waiting while it is busy. If the actor has
    /// stopped (it failed), a fresh one is started once.
    async fn forward(&mut self, id: DocumentId, command: DocCommand) -> Result<(), Ending> {
        let registry = &self.app.registry;
        let deleted = || Ending::Kicked("this lab was deleted".into());
        let handle = match self.docs.get(&id) {
            Some(handle) => handle.clone(),
            None => {
                let handle = registry.get(id).ok_or_else(deleted)?;
                self.docs.insert(id, handle.clone());
                handle
            }
        };
        let Err(command) = handle.send(command).await else {
            return Ok(());
        };
        let fresh = registry.get(id).ok_or_else(deleted)?;
        self.docs.insert(id, fresh.clone());
        fresh.send(command).await.map_err(|_| {
            Ending::Kicked(format!(
                "document {id} is not available right now; reconnect"
            ))
        })
    }

    /// Detaches from every document and forgets the peer.
    async fn finish(&mut self, ending: &Ending) {
        for (_, handle) in self.docs.drain() {
            // An actor that already stopped has nothing to detach.
            let _gone = handle.send(DocCommand::Detach { conn: self.conn_id }).await;
        }
        self.app
            .conns
            .remove(&self.grant.lab_id, self.peer_id.as_ref(), self.conn_id);
        tracing::debug!(ending = ?ending, "connection finished");
    }
}

/// Runs a write that a phone which stopped reading would block forever, while staying
/// responsive to shutdown and to being kicked; a write that takes `limit` means the peer is
/// unresponsive.
async fn guarded<T>(
    stop: &tokio_util::sync::CancellationToken,
    kick: &Kick,
    limit: Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Ending> {
    tokio::select! {
        biased;
        () = stop.cancelled() => Err(Ending::Stopping),
        reason = kick.fired() => Err(Ending::Kicked(reason.to_owned())),
        done = work => Ok(done),
        () = tokio::time::sleep(limit) => Err(Ending::Unresponsive),
    }
}

/// Runs `work`, the handling of one frame, which waits while the document's actor is busy,
/// and meanwhile keeps writing what actors queue for this connection. The actor goes on
/// answering this very phone while it waits, and an outbox nobody drains would fill up and get
/// an honest phone dropped. The socket is not read meanwhile, so TCP slows the phone down.
async fn writing_meanwhile<T>(
    work: impl std::future::Future<Output = T>,
    sink: &mut Sink,
    outbox: &mut OutboxReceiver,
    (stop, kick, limit): (&tokio_util::sync::CancellationToken, &Kick, Duration),
) -> Result<T, Ending> {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return Err(Ending::Stopping),
            reason = kick.fired() => return Err(Ending::Kicked(reason.to_owned())),
            done = &mut work => return Ok(done),
            Some(out) = outbox.recv() => {
                let written = write_outgoing(sink, outbox, out);
                match guarded(stop, kick, limit, written).await? {
                    Ok(None) => {}
                    Ok(Some(ending)) => return Err(ending),
                    Err(err) => return Err(Ending::ClientLeft(err)),
                }
            }
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, WsMessage>;

async fn send_all(sink: &mut Sink, messages: Vec<Message>) -> Result<(), String> {
    for message in messages {
        let bytes = encode(&message);
        crate::ops::metrics().sent(bytes.len());
        sink.send(WsMessage::Binary(bytes.into()))
            .await
            .map_err(|err| err.to_string())?;
    }
    Ok(())
}

/// Writes one outgoing item and whatever else is already queued, with one flush.
async fn write_outgoing(
    sink: &mut Sink,
    outbox: &mut OutboxReceiver,
    first: Outgoing,
) -> Result<Option<Ending>, String> {
    let mut next = Some(first);
    let mut written = 0;
    while let Some(out) = next.take() {
        match out {
            Outgoing::Message(message) => {
                let bytes = encode(&message);
                crate::ops::metrics().sent(bytes.len());
                sink.feed(WsMessage::Binary(bytes.into()))
                    .await
                    .map_err(|err| err.to_string())?;
                written += 1;
            }
            Outgoing::Fail(text) => {
                sink.flush().await.map_err(|err| err.to_string())?;
                return Ok(Some(Ending::refused(text)));
            }
        }
        if written < MAX_WRITE_BATCH {
            next = outbox.try_recv();
        }
    }
    sink.flush().await.map_err(|err| err.to_string())?;
    Ok(None)
}

fn classify_read_error(err: &axum::Error, limit: usize) -> Ending {
    use std::error::Error as _;
    let inner = err
        .source()
        .and_then(|source| source.downcast_ref::<tungstenite::Error>());
    if let Some(tungstenite::Error::Capacity(capacity)) = inner {
        Ending::Refused {
            message: format!(
                "message larger than the server's limit of {limit} bytes ({capacity})"
            ),
            code: CLOSE_TOO_BIG,
        }
    } else {
        Ending::ClientLeft(format!("socket error: {err}"))
    }
}
