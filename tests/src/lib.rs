//! Test harness: real servers on 127.0.0.1:0 with temporary data directories, in-process or as
//! the `labboard` binary, and raw WebSocket peers for protocol-level tests.
//!
//! Every server, process and directory made here is stopped or removed when dropped.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use labboard::Config;
use labboard_protocol::{decode, encode, Message, PeerId, PeerMetadata};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub mod crafted;
pub mod js;
pub mod nginx;
pub mod pg;

pub use labboard::config::TEST_ORGANIZER_TOKEN;

/// Upper bound for any single wait in a test; generous, because CI machines are slow.
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing with `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// An observer's access to a lab.
#[derive(Debug, Clone)]
pub struct Joined {
    pub token: String,
    /// What the server checks the observer's notes, reactions and time-outs against.
    pub author_id: String,
}

/// A person on a lab's board: their access, and a connected Rust client with the board open.
pub struct Person {
    pub token: String,
    pub author_id: String,
    pub client: labboard_protocol::client::Client,
    pub board: labboard_protocol::client::DocHandle,
}

impl Person {
    /// Changes the board as this person and waits until the server has stored the change.
    pub async fn change(&self, f: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) {
        self.board.change(f);
        within("the change is stored", self.board.wait_synced())
            .await
            .expect("the connection stays open");
    }

    /// Writes note `id` as this person, signed `author_name`, in lesson 1's "strategies" at
    /// `created_at` (ms), with no children or reactions; `more` adds fields to it. Waits until
    /// the server has stored it.
    pub async fn write_note(
        &self,
        id: &str,
        text: &str,
        author_name: &str,
        created_at: i64,
        more: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId),
    ) {
        use automerge::transaction::Transactable;
        use automerge::{ObjType, ReadDoc, ROOT};
        let author = self.author_id.clone();
        self.change(|tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let note = tx.put_object(&notes, id, ObjType::Map).unwrap();
            tx.put(&note, "text", text).unwrap();
            tx.put(&note, "authorId", author.as_str()).unwrap();
            tx.put(&note, "authorName", author_name).unwrap();
            tx.put(&note, "category", "strategies").unwrap();
            tx.put(&note, "createdAt", created_at).unwrap();
            tx.put(&note, "phase", "lesson-1").unwrap();
            tx.put_object(&note, "children", ObjType::List).unwrap();
            tx.put_object(&note, "reactions", ObjType::Map).unwrap();
            more(tx, &note);
        })
        .await;
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

    /// The sync URL without a token (refused since labs exist; for tests of that refusal).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// The sync URL with an access token, as the web client builds it.
    pub fn sync_url(&self, token: &str) -> String {
        sync_url(self.addr, token)
    }

    /// Creates a lab through the API with the test organizer token.
    pub async fn create_lab(&self, title: &str) -> Lab {
        create_lab(self.addr, title).await
    }

    /// Joins a lab by code; returns the observer token.
    pub async fn join(&self, code: &str, name: &str) -> String {
        join_lab(self.addr, code, name).await
    }

    /// Signs in as the lab's facilitator; returns the facilitator token.
    pub async fn facilitate(&self, lab: &Lab) -> String {
        facilitate(self.addr, lab).await
    }

    /// An observer phone named `name`: joins `lab`, connects and opens the lab's board.
    pub async fn phone(
        &self,
        lab: &Lab,
        name: &str,
    ) -> (
        labboard_protocol::client::Client,
        labboard_protocol::client::DocHandle,
    ) {
        let token = self.join(&lab.join_code, name).await;
        self.attach(&token, name, lab).await
    }

    /// A Rust client connected with `token` as peer `peer` and attached to the lab's board.
    pub async fn attach(
        &self,
        token: &str,
        peer: &str,
        lab: &Lab,
    ) -> (
        labboard_protocol::client::Client,
        labboard_protocol::client::DocHandle,
    ) {
        let client = within(
            "connect",
            labboard_protocol::client::Client::connect(&self.sync_url(token), PeerId::from(peer)),
        )
        .await
        .expect("the token opens a socket");
        let board = within("find the board", client.find(lab.doc_id))
            .await
            .expect("the lab's board is available");
        (client, board)
    }

    /// The lab's board as stored, read through a second connection to the database.
    pub async fn stored_board(&self, lab: &Lab) -> automerge::Automerge {
        use labboard::storage::Storage;
        let store = labboard::storage::SqliteStorage::open(self.dir.path())
            .expect("open storage alongside");
        let stored = store
            .load(lab.doc_id)
            .await
            .expect("load")
            .expect("the board is stored");
        store.close().await.expect("close storage");
        automerge::Automerge::load(&stored.concatenated()).expect("stored board loads")
    }

    /// `POST /api/join` with `code` and `name`, whatever it answers.
    pub async fn try_join(&self, code: &str, name: &str) -> HttpResponse {
        let body = serde_json::json!({ "code": code, "name": name }).to_string();
        self.http("POST", "/api/join", None, Some(&body)).await
    }

    /// Joins a lab by code with a device key; returns the token and the author id it grants.
    pub async fn joined(&self, code: &str, name: &str, device_key: &str) -> Joined {
        let body =
            serde_json::json!({ "code": code, "name": name, "deviceKey": device_key }).to_string();
        let response = http(self.addr, "POST", "/api/join", None, Some(&body)).await;
        assert_eq!(response.status, 200, "join: {}", response.body);
        let json = response.json();
        Joined {
            token: json["token"].as_str().expect("token").to_owned(),
            author_id: json["authorId"].as_str().expect("authorId").to_owned(),
        }
    }

    /// Signs in to a lab as its facilitator (with its key) from a device; returns the token and
    /// the author id it grants.
    pub async fn facilitated(&self, lab: &Lab, name: &str, device_key: &str) -> Joined {
        let body = serde_json::json!({ "key": lab.facilitator_key, "name": name, "deviceKey": device_key })
            .to_string();
        let path = format!("/api/labs/{}/facilitate", lab.lab_id);
        let response = http(self.addr, "POST", &path, None, Some(&body)).await;
        assert_eq!(response.status, 200, "facilitate: {}", response.body);
        let json = response.json();
        Joined {
            token: json["token"].as_str().expect("token").to_owned(),
            author_id: json["authorId"].as_str().expect("authorId").to_owned(),
        }
    }

    /// Connects a Rust client with `access` and opens the lab's board.
    pub async fn person(&self, lab: &Lab, access: Joined) -> Person {
        let Joined { token, author_id } = access;
        let client = within(
            "connect",
            labboard_protocol::client::Client::connect(
                &self.sync_url(&token),
                PeerId::from(author_id.as_str()),
            ),
        )
        .await
        .expect("client connects");
        let board = within("find the board", client.find(lab.doc_id))
            .await
            .expect("the lab's board is available");
        Person {
            token,
            author_id,
            client,
            board,
        }
    }

    /// An HTTP request to this server.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> HttpResponse {
        http(self.addr, method, path, auth, body).await
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
            .env("LABBOARD_ADMIN_TOKEN", TEST_ORGANIZER_TOKEN)
            .env_remove("LABBOARD_ADMIN_TOKEN_FILE")
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
                let rest = line
                    .strip_prefix("labboard listening on http://")
                    .or_else(|| line.strip_prefix("labboard listening on https://"));
                if let Some(rest) = rest {
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

    pub fn sync_url(&self, token: &str) -> String {
        sync_url(self.addr, token)
    }

    /// SIGKILL: no graceful shutdown, no flushing.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing labboard")
    }

    /// SIGTERM, then waits for a clean exit.
    /// Sends SIGHUP (`systemctl reload`).
    pub async fn hang_up(&mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("labboard already exited")?;
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .await?;
        if !status.success() {
            bail!("kill -HUP {pid} failed");
        }
        Ok(())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

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

    /// Connects from the local address `source` (e.g. 127.0.0.2: all of 127/8 is loopback on
    /// Linux), for tests where the client's address matters.
    pub async fn connect_from(source: IpAddr, url: &str) -> anyhow::Result<Self> {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .with_context(|| format!("no ws://host:port in {url}"))?;
        let addr: SocketAddr = authority
            .parse()
            .with_context(|| format!("not an address: {authority}"))?;
        let stream = connect_from(source, addr).await?;
        let (socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .with_context(|| format!("connecting to {url} from {source}"))?;
        Ok(Self { socket })
    }

    /// Completes the handshake as `peer_id` on a connected peer; returns the server's peer id.
    pub async fn join(&mut self, peer_id: &str) -> anyhow::Result<PeerId> {
        self.send(&join(peer_id)).await?;
        match self.recv().await? {
            Message::Peer { sender_id, .. } => Ok(sender_id),
            other => bail!("expected peer, got {other:?}"),
        }
    }

    /// Connects and completes the handshake as `peer_id`; returns the server's peer id.
    pub async fn joined(url: &str, peer_id: &str) -> anyhow::Result<(Self, PeerId)> {
        let mut peer = Self::connect(url).await?;
        let server_peer = peer.join(peer_id).await?;
        Ok((peer, server_peer))
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

/// `ws://<addr>/sync?token=<token>`.
pub fn sync_url(addr: SocketAddr, token: &str) -> String {
    format!("ws://{addr}/sync?token={token}")
}

/// `ws://<addr>/sync?lab=<lab id>&token=<token>`, as the web client builds it: a proxy in front
/// of several nodes routes by the lab.
pub fn lab_sync_url(addr: SocketAddr, lab_id: &str, token: &str) -> String {
    format!("ws://{addr}/sync?lab={lab_id}&token={token}")
}

/// A lab as the create call returns it.
#[derive(Debug, Clone)]
pub struct Lab {
    pub lab_id: String,
    pub doc_id: labboard_protocol::DocumentId,
    pub doc_url: String,
    pub join_code: String,
    pub join_url: String,
    pub facilitator_key: String,
}

/// Creates a lab with the test organizer token; panics with the server's words if refused.
pub async fn create_lab(addr: SocketAddr, title: &str) -> Lab {
    let body =
        serde_json::json!({ "title": title, "school": "Hillside", "grade": "2" }).to_string();
    let response = http(
        addr,
        "POST",
        "/api/labs",
        Some(TEST_ORGANIZER_TOKEN),
        Some(&body),
    )
    .await;
    assert_eq!(response.status, 201, "create lab: {}", response.body);
    lab_from_created(&response.json())
}

/// The [`Lab`] in the answer of `POST /api/labs`; panics naming a missing field.
pub fn lab_from_created(json: &serde_json::Value) -> Lab {
    let text = |key: &str| {
        json[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {json}"))
            .to_owned()
    };
    let doc_url = text("docUrl");
    Lab {
        lab_id: text("labId"),
        doc_id: labboard_protocol::DocumentId::from_url(&doc_url)
            .expect("docUrl is an automerge URL"),
        doc_url,
        join_code: text("joinCode"),
        join_url: text("joinUrl"),
        facilitator_key: text("facilitatorKey"),
    }
}

/// Joins with a code; returns the observer token.
pub async fn join_lab(addr: SocketAddr, code: &str, name: &str) -> String {
    let body = serde_json::json!({ "code": code, "name": name }).to_string();
    let response = http(addr, "POST", "/api/join", None, Some(&body)).await;
    assert_eq!(response.status, 200, "join: {}", response.body);
    response.json()["token"].as_str().expect("token").to_owned()
}

/// Signs in with the facilitator key; returns the facilitator token.
pub async fn facilitate(addr: SocketAddr, lab: &Lab) -> String {
    let body = serde_json::json!({ "key": lab.facilitator_key }).to_string();
    let path = format!("/api/labs/{}/facilitate", lab.lab_id);
    let response = http(addr, "POST", &path, None, Some(&body)).await;
    assert_eq!(response.status, 200, "facilitate: {}", response.body);
    response.json()["token"].as_str().expect("token").to_owned()
}

/// A response read by [`http`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The body as sent.
    pub bytes: Vec<u8>,
}

impl HttpResponse {
    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `error` text of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", self.body))
            .to_owned()
    }
}

/// Asserts a refusal: its status, and that its `error` text says `words`.
pub fn assert_refused(response: &HttpResponse, status: u16, words: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    let error = response.error();
    assert!(
        error.contains(words),
        "error `{error}` does not mention `{words}`"
    );
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), enough for testing the
/// JSON API without an HTTP client dependency. `auth` becomes `Authorization: Bearer …`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> HttpResponse {
    http_raw(addr, method, path, auth, body.map(str::as_bytes)).await
}

/// A TCP connection to `addr` from the local address `source` (any port).
pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Like [`http`], sent from the local address `source`.
pub async fn http_from(
    source: IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> HttpResponse {
    let stream = within("connect for HTTP", connect_from(source, addr))
        .await
        .expect("connect for HTTP");
    http_over(
        stream,
        addr,
        method,
        path,
        auth,
        &[],
        body.map(str::as_bytes),
    )
    .await
}

/// Like [`http`], with a body of arbitrary bytes.
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> HttpResponse {
    let stream = within("connect for HTTP", TcpStream::connect(addr))
        .await
        .expect("connect for HTTP");
    http_over(stream, addr, method, path, auth, &[], body).await
}

/// Like [`http_raw`], with extra request headers (`name`, `value`).
pub async fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let stream = within("connect for HTTP", TcpStream::connect(addr))
        .await
        .expect("connect for HTTP");
    http_over(stream, addr, method, path, auth, headers, body).await
}

/// One request over a connected `stream` (plain TCP or TLS), which is then closed.
pub async fn http_over<S>(
    mut stream: S,
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    extra_headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = auth {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method != "GET" {
        request.push_str("Content-Type: application/json\r\n");
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let exchange = async {
        // A refused connection may be closed before the request is written; its answer is
        // still there to read.
        let _ = stream.write_all(request.as_bytes()).await;
        // A server may answer (413) before reading all of a large body; that is fine.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        // A reset after the answer (unread body) still leaves the answer readable.
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = within("HTTP response", exchange).await;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |at| at + 4);
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
        bytes: raw[start..].to_vec(),
    }
}

/// Raises this process's soft limit on open files to at least `needed`, as far as the hard
/// limit allows (tests that hold thousands of sockets need more than a common default of 1024).
/// Panics if the hard limit is lower than `needed`.
pub fn ensure_open_file_limit(needed: u64) {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current.is_none_or(|current| current >= needed) {
            return;
        }
        assert!(
            limit.maximum.is_none_or(|maximum| maximum >= needed),
            "this test needs {needed} open files, over the hard limit {:?} (`ulimit -Hn`)",
            limit.maximum
        );
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(needed),
                maximum: limit.maximum,
            },
        )
        .expect("raise the open-file limit");
    }
    #[cfg(not(unix))]
    let _ = needed;
}

/// Adds a note to a board's `notes` map (as a scalar string, under `id`).
pub fn add_note(handle: &labboard_protocol::client::DocHandle, id: &str, text: &str) {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    handle.change(|tx| {
        let notes = tx
            .get(automerge::ROOT, "notes")
            .expect("read notes")
            .expect("notes exist")
            .1;
        tx.put(&notes, id, text).expect("put note");
    });
}

/// Number of notes on a board.
pub fn note_count(doc: &automerge::Automerge) -> usize {
    use automerge::ReadDoc;
    doc.get(automerge::ROOT, "notes")
        .ok()
        .flatten()
        .map_or(0, |(_, notes)| doc.length(&notes))
}

/// The text of note `id`, if the board has it.
pub fn note(doc: &automerge::Automerge, id: &str) -> Option<String> {
    use automerge::ReadDoc;
    let (_, notes) = doc.get(automerge::ROOT, "notes").ok()??;
    read_string(doc, &notes, id)
}

/// The SHA-256 of `bytes` in lowercase hex: the id of a photo uploaded as `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A JPEG marker segment: `FF marker`, the length (counting itself), the payload.
pub fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An APP1 EXIF payload as a phone camera writes one, reduced: `Exif\0\0`, a big-endian TIFF
/// header, IFD0 with Make and the GPS IFD pointer (tag 0x8825), and a GPS IFD with a latitude.
pub fn exif_with_gps() -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0*");
    tiff.extend_from_slice(&8u32.to_be_bytes());
    // IFD0 at 8: two entries (12 bytes each), then the next-IFD offset: ends at 38.
    tiff.extend_from_slice(&2u16.to_be_bytes());
    // Make: ASCII, 12 bytes at offset 38.
    tiff.extend_from_slice(&0x010Fu16.to_be_bytes());
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&12u32.to_be_bytes());
    tiff.extend_from_slice(&38u32.to_be_bytes());
    // GPSInfo: LONG, the GPS IFD at offset 50.
    tiff.extend_from_slice(&0x8825u16.to_be_bytes());
    tiff.extend_from_slice(&4u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&50u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(b"SchoolPhone\0");
    // GPS IFD at 50: GPSLatitudeRef "N".
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&2u32.to_be_bytes());
    tiff.extend_from_slice(b"N\0\0\0");
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    payload
}

/// A baseline JPEG as a camera saves it, with EXIF (GPS included) and XMP, whose entropy-coded
/// data carries `data` (no 0xFF in it). Returns the file and the same file without its
/// metadata segments, which is what the server must store (and [`photo_jpeg`] of `data`).
pub fn camera_jpeg(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert!(!data.contains(&0xFF));
    let mut dqt = vec![0];
    dqt.extend(1..=64u8);
    // 8-bit, 8x8, one component.
    let sof = [8, 0, 8, 0, 8, 1, 1, 0x11, 0];
    let mut dht = vec![0x00, 0, 1];
    dht.extend_from_slice(&[0; 14]);
    dht.push(0);
    let mut scan = data.to_vec();
    scan.extend_from_slice(&[0xFF, 0x00, 0x42, 0xFF, 0xD9]);
    let parts = [
        (true, vec![0xFF, 0xD8]),
        (
            true,
            jpeg_segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"),
        ),
        (false, jpeg_segment(0xE1, &exif_with_gps())),
        (
            false,
            jpeg_segment(
                0xE1,
                b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPSLatitude</x:xmpmeta>",
            ),
        ),
        (false, jpeg_segment(0xFE, b"Room 12, Hillside")),
        (true, jpeg_segment(0xDB, &dqt)),
        (true, jpeg_segment(0xC0, &sof)),
        (true, jpeg_segment(0xC4, &dht)),
        (true, jpeg_segment(0xDA, &[1, 1, 0, 0, 63, 0])),
        (true, scan),
    ];
    let original = parts.iter().flat_map(|(_, p)| p.clone()).collect();
    let stripped = parts
        .iter()
        .filter(|(keep, _)| *keep)
        .flat_map(|(_, p)| p.clone())
        .collect();
    (original, stripped)
}

/// A small baseline JPEG (JFIF, tables, an 8x8 frame, one scan) whose entropy-coded data
/// carries `data` (no 0xFF in it), so that each photo of a test is distinct. It has no metadata,
/// so the server stores it as it is.
pub fn photo_jpeg(data: &[u8]) -> Vec<u8> {
    camera_jpeg(data).1
}

/// A one-pixel PNG whose IDAT chunk holds `data`: 57 bytes plus `data`. Its CRCs are zero: the
/// server copies chunks whole and does not check them.
pub fn photo_png(data: &[u8]) -> Vec<u8> {
    let chunk = |kind: &[u8; 4], body: &[u8]| {
        let mut out = u32::try_from(body.len())
            .expect("a small chunk")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out.extend_from_slice(&[0; 4]);
        out
    };
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
    out.extend(chunk(b"IDAT", data));
    out.extend(chunk(b"IEND", &[]));
    out
}
