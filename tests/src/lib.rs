//! Test harness: real servers on 127.0.0.1:0 with temporary data directories, in-process or as
//! the `labboard` binary, and raw WebSocket peers for protocol-level tests.
//!
//! Every server, process and directory made here is stopped or removed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use labboard::Config;
use labboard_protocol::{decode, encode, Message, PeerId, PeerMetadata};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub mod js;

/// Upper bound for any single wait in a test; generous, because CI machines are slow.
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing with `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// A server running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: TempDir,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), labboard::ServerError>>,
    /// Stops the server when the test drops it without calling [`TestServer::stop`].
    _stop_on_drop: tokio_util::sync::DropGuard,
}

impl TestServer {
    /// Starts a server with the test configuration on a fresh temporary directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server, letting the test adjust the configuration first.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, tweak).await
    }

    /// Starts a server on an existing data directory (to test restarts).
    pub async fn start_in(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests(dir.path());
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(labboard::run(listener, config, shutdown.clone()));
        Self {
            addr,
            dir,
            _stop_on_drop: shutdown.clone().drop_guard(),
            shutdown,
            task,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("labboard.db")
    }

    /// Graceful shutdown through the same token SIGTERM cancels; returns the data directory.
    pub async fn stop(self) -> TempDir {
        let Self {
            dir,
            shutdown,
            task,
            ..
        } = self;
        shutdown.cancel();
        within("server shutdown", task)
            .await
            .expect("server task panicked")
            .expect("server returned an error");
        dir
    }
}

/// The `labboard` binary next to this test executable (built by `cargo test`, because the
/// server package has integration tests of its own), or `LABBOARD_BIN`.
pub fn labboard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LABBOARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    dir.join(format!("labboard{}", std::env::consts::EXE_SUFFIX))
}

/// The `labboard` binary running as a child process, killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl ServerProcess {
    pub async fn spawn(data_dir: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(data_dir, &[]).await
    }

    pub async fn spawn_with(data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Self> {
        let bin = labboard_bin();
        if !bin.exists() {
            bail!("{} is missing: build it with `cargo build`", bin.display());
        }
        let mut child = Command::new(&bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--log")
            .arg("warn")
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("labboard listening on http://") {
                    return Ok(rest.trim().parse::<SocketAddr>()?);
                }
            }
            bail!("labboard exited before printing its address")
        })
        .await
        .context("waiting for the listening line")??;
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { addr, child })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// SIGKILL: no graceful shutdown, no flushing.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing labboard")
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("labboard already exited")?;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        Ok(tokio::time::timeout(WAIT, self.child.wait()).await??)
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A hand-driven protocol peer for tests that send exact (or broken) frames.
pub struct RawPeer {
    pub socket: Socket,
}

/// What a raw peer saw when the server ended the connection.
#[derive(Debug, Default)]
pub struct Closed {
    /// Text of the `error` message received before the close, if any.
    pub error: Option<String>,
    pub code: Option<CloseCode>,
}

impl RawPeer {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(Self { socket })
    }

    /// Connects and completes the handshake as `peer_id`; returns the server's peer id.
    pub async fn joined(url: &str, peer_id: &str) -> anyhow::Result<(Self, PeerId)> {
        let mut peer = Self::connect(url).await?;
        peer.send(&join(peer_id)).await?;
        match peer.recv().await? {
            Message::Peer { sender_id, .. } => Ok((peer, sender_id)),
            other => bail!("expected peer, got {other:?}"),
        }
    }

    pub async fn send(&mut self, message: &Message) -> anyhow::Result<()> {
        self.send_bytes(encode(message)).await
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.socket.send(WsMessage::Binary(bytes.into())).await?;
        Ok(())
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket.send(WsMessage::Text(text.into())).await?;
        Ok(())
    }

    /// The next protocol message (pings are skipped).
    pub async fn recv(&mut self) -> anyhow::Result<Message> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .context("waiting for a message")?;
            match frame {
                Some(Ok(WsMessage::Binary(bytes))) => return Ok(decode(&bytes)?),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(other)) => bail!("expected a binary frame, got {other:?}"),
                Some(Err(err)) => bail!("socket error: {err}"),
                None => bail!("connection closed"),
            }
        }
    }

    /// Reads until the server closes; collects the `error` message sent before the close.
    pub async fn closed(&mut self) -> Closed {
        let mut closed = Closed::default();
        loop {
            let frame = within("the server to close the connection", self.socket.next()).await;
            match frame {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    if let Ok(Message::Error { message, .. }) = decode(&bytes) {
                        closed.error = Some(message);
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    closed.code = frame.map(|f| f.code);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return closed,
            }
        }
    }
}

/// A `join` as the JS client sends it.
pub fn join(peer_id: &str) -> Message {
    Message::Join {
        sender_id: PeerId::from(peer_id),
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: Some(true),
        }),
        supported_protocol_versions: Some(vec!["1".into()]),
    }
}

/// A string property as either kind of Automerge string: a scalar (what Rust code usually
/// writes) or collaborative text (what the JS client writes for a JS string).
pub fn read_string<O, P>(doc: &automerge::Automerge, obj: O, prop: P) -> Option<String>
where
    O: AsRef<automerge::ObjId>,
    P: Into<automerge::Prop>,
{
    use automerge::ReadDoc;
    match doc.get(obj, prop).ok()?? {
        (automerge::Value::Object(automerge::ObjType::Text), text) => doc.text(&text).ok(),
        (value, _) => value.as_str().map(str::to_owned),
    }
}
