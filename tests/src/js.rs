//! Drive the official JavaScript client (`@automerge/automerge-repo` 2.5.6 with its WebSocket
//! client adapter) from Rust integration tests.
//!
//! Each [`JsPeer`] is one `node tests/js/peer.mjs` process holding one in-memory JS `Repo`
//! connected to a sync server URL. It is controlled by JSON lines on its stdin and answers with
//! JSON lines on its stdout (see the header of `tests/js/peer.mjs` for the command list); its
//! stderr (logs) is inherited. The process is killed when the `JsPeer` is dropped.
//!
//! `tests/js/node_modules` must exist: run `npm ci` in `tests/js` first ([`ensure_installed`]
//! says so when it is missing). Every wait here is bounded, so a hung node process fails the
//! test instead of hanging the suite.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Reconnect interval passed to the JS client adapter by [`JsPeer::spawn`] (the library default
/// is 5000 ms, far too slow for tests).
pub const TEST_RETRY_MS: u64 = 200;
/// `timeoutMs` the convenience methods pass to the JS side for finds and waits.
pub const DEFAULT_WAIT_MS: u64 = 10_000;
/// How long [`JsPeer::spawn`] waits for the `ready` event (node start + WASM load, ~0.3 s).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound for a [`JsPeer::call`] whose command has no `timeoutMs`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Added on the Rust side to a command's own `timeoutMs`, so the JS timeout error wins.
const CALL_MARGIN: Duration = Duration::from_secs(5);
/// Bound for [`JsPeer::next_event`].
pub const DEFAULT_EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable that overrides the `node` binary.
pub const NODE_ENV: &str = "LABBOARD_NODE";

/// `tests/js`, located from this crate's manifest directory.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Fails with a clear message if `npm ci` has not been run in `tests/js`.
pub fn ensure_installed() -> anyhow::Result<()> {
    let dir = js_dir();
    let script = dir.join("peer.mjs");
    if !script.is_file() {
        bail!("{} is missing", script.display());
    }
    for package in [
        "@automerge/automerge-repo",
        "@automerge/automerge-repo-network-websocket",
        "@automerge/automerge",
        "ws",
    ] {
        let manifest = dir.join("node_modules").join(package).join("package.json");
        if !manifest.is_file() {
            bail!(
                "JS test dependencies are not installed ({} is missing): run `npm ci` in {}",
                manifest.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// One JS automerge-repo peer in its own node process.
pub struct JsPeer {
    peer_id: String,
    child: Child,
    stdin: ChildStdin,
    /// Parsed stdout lines, read by a background task so node never blocks on a full pipe.
    lines: mpsc::UnboundedReceiver<Value>,
    /// `event` lines that arrived while waiting for a reply.
    events: VecDeque<Value>,
    next_id: u64,
    /// Set once the driver reported `{"event":"fatal"}`.
    fatal: Option<String>,
}

impl std::fmt::Debug for JsPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsPeer")
            .field("peer_id", &self.peer_id)
            .field("pid", &self.child.id())
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl JsPeer {
    /// Starts a peer connecting to `url` (e.g. `ws://127.0.0.1:PORT/sync`) with reconnect
    /// interval [`TEST_RETRY_MS`], and waits for its `ready` event. The peer may not be
    /// connected yet: use [`JsPeer::wait_connected`] when that matters.
    pub async fn spawn(url: &str, peer_id: &str) -> anyhow::Result<JsPeer> {
        Self::spawn_with_retry(url, peer_id, TEST_RETRY_MS).await
    }

    /// Like [`JsPeer::spawn`] with an explicit reconnect interval in milliseconds.
    pub async fn spawn_with_retry(
        url: &str,
        peer_id: &str,
        retry_ms: u64,
    ) -> anyhow::Result<JsPeer> {
        Self::spawn_with_env(url, peer_id, retry_ms, &[]).await
    }

    /// Like [`JsPeer::spawn_with_retry`] with extra environment variables for the node
    /// process, e.g. `NODE_EXTRA_CA_CERTS` to trust a test CA for `wss://`.
    pub async fn spawn_with_env(
        url: &str,
        peer_id: &str,
        retry_ms: u64,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<JsPeer> {
        ensure_installed()?;
        let dir = js_dir();
        let node = std::env::var(NODE_ENV).unwrap_or_else(|_| "node".to_owned());
        let mut child = Command::new(&node)
            .arg(dir.join("peer.mjs"))
            .args(["--url", url, "--peer-id", peer_id, "--retry-ms"])
            .arg(retry_ms.to_string())
            .envs(env.iter().copied())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning `{node} peer.mjs` (is Node 20 installed?)"))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = child.stdout.take().context("child stdout")?;

        let (tx, lines) = mpsc::unbounded_channel();
        let label = peer_id.to_owned();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            loop {
                match reader.next_line().await {
                    Ok(Some(line)) => {
                        if line.trim().is_empty() {
                            continue;
                        }
                        match serde_json::from_str::<Value>(&line) {
                            Ok(value) => {
                                if tx.send(value).is_err() {
                                    break;
                                }
                            }
                            Err(_) => eprintln!("[js-peer {label}] non-JSON stdout: {line}"),
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        eprintln!("[js-peer {label}] reading stdout: {err}");
                        break;
                    }
                }
            }
        });

        let mut peer = JsPeer {
            peer_id: peer_id.to_owned(),
            child,
            stdin,
            lines,
            events: VecDeque::new(),
            next_id: 1,
            fatal: None,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let line = peer.recv(deadline, "the ready event").await?;
            match line.get("event").and_then(Value::as_str) {
                Some("ready") => break,
                Some(_) => peer.handle_event(line)?,
                None => eprintln!("[js-peer {peer_id}] unexpected line before ready: {line}"),
            }
        }
        Ok(peer)
    }

    /// The peer id given at spawn (the JS repo's `PeerId`, the `senderId` the server sees).
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The error of the driver's `fatal` event, if it reported one.
    pub fn fatal_error(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Sends one command object (an `id` is added) and returns the whole reply object
    /// (`{"id":..,"ok":true,...}`). An `ok:false` reply becomes an `Err` carrying its `error`
    /// text. Bounded by the command's `timeoutMs` plus a margin, or [`DEFAULT_CALL_TIMEOUT`].
    pub async fn call(&mut self, cmd: Value) -> anyhow::Result<Value> {
        let timeout = match cmd.get("timeoutMs").and_then(Value::as_u64) {
            Some(ms) => Duration::from_millis(ms) + CALL_MARGIN,
            None => DEFAULT_CALL_TIMEOUT,
        };
        self.call_with_timeout(cmd, timeout).await
    }

    /// [`JsPeer::call`] with an explicit Rust-side bound.
    pub async fn call_with_timeout(
        &mut self,
        mut cmd: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        self.check_fatal()?;
        let id = self.next_id;
        self.next_id += 1;
        let Some(obj) = cmd.as_object_mut() else {
            bail!("a JS peer command must be a JSON object, got {cmd}");
        };
        obj.insert("id".to_owned(), json!(id));
        let name = obj
            .get("cmd")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let what = format!("the reply to {name} (id {id})");

        let deadline = Instant::now() + timeout;
        let mut line = serde_json::to_string(&cmd)?;
        line.push('\n');
        let write = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.flush().await
        };
        match tokio::time::timeout_at(deadline, write).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                // Most likely the process died; report that (and a fatal event if any) instead.
                let status = self.exit_status().await;
                self.drain_for_fatal();
                self.check_fatal()?;
                bail!("js peer {}: writing {name}: {err} ({status})", self.peer_id);
            }
            Err(_) => bail!("js peer {}: timed out writing {name}", self.peer_id),
        }

        loop {
            let line = self.recv(deadline, &what).await?;
            if line.get("event").is_some() {
                self.handle_event(line)?;
                continue;
            }
            if line.get("id").and_then(Value::as_u64) != Some(id) {
                // A late reply to an earlier call that timed out on our side.
                eprintln!("[js-peer {}] dropping stale reply: {line}", self.peer_id);
                continue;
            }
            if line.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(line);
            }
            let error = line
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| line.to_string(), str::to_owned);
            bail!("js peer {}: {name} failed: {error}", self.peer_id);
        }
    }

    /// The next event line (e.g. `{"event":"ephemeral","url":..,"message":..,"senderId":..}`),
    /// waiting at most [`DEFAULT_EVENT_TIMEOUT`]. A `fatal` event becomes an `Err`.
    pub async fn next_event(&mut self) -> anyhow::Result<Value> {
        self.next_event_timeout(DEFAULT_EVENT_TIMEOUT).await
    }

    /// [`JsPeer::next_event`] with an explicit bound.
    pub async fn next_event_timeout(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        self.check_fatal()?;
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.recv(deadline, "an event").await?;
            if line.get("event").is_some() {
                self.handle_event(line)?;
                if let Some(event) = self.events.pop_front() {
                    return Ok(event);
                }
            } else {
                eprintln!("[js-peer {}] dropping stale reply: {line}", self.peer_id);
            }
        }
    }

    /// Events already received and not yet taken, without waiting.
    pub fn take_events(&mut self) -> Vec<Value> {
        while let Ok(line) = self.lines.try_recv() {
            if line.get("event").is_some() {
                // A fatal event is kept in `self.fatal`; later calls report it.
                let _ = self.handle_event(line);
            }
        }
        self.events.drain(..).collect()
    }

    // ------------------------------------------------------------ convenience wrappers

    /// `repo.create(doc)`; returns the `automerge:` URL.
    pub async fn create(&mut self, doc: Value) -> anyhow::Result<String> {
        let reply = self.call(json!({ "cmd": "create", "doc": doc })).await?;
        string_field(&reply, "url")
    }

    /// `repo.find(url)`; returns the document as JSON. Errors contain "unavailable" when
    /// neither the JS repo nor the server has it.
    pub async fn find(&mut self, url: &str) -> anyhow::Result<Value> {
        let cmd = json!({ "cmd": "find", "url": url, "timeoutMs": DEFAULT_WAIT_MS });
        Ok(self.call(cmd).await?["doc"].take())
    }

    /// The document as JSON plus its heads: reply fields `doc`, `heads` (hex change hashes, as
    /// Rust's `ChangeHash` prints them) and `urlHeads` (bs58, as in automerge URLs).
    pub async fn get(&mut self, url: &str) -> anyhow::Result<Value> {
        let cmd = json!({ "cmd": "get", "url": url, "timeoutMs": DEFAULT_WAIT_MS });
        self.call(cmd).await
    }

    /// Loads a saved document (`Automerge::save` bytes) with the JS Automerge library alone;
    /// reply fields `doc` and `heads`, as for [`Self::get`].
    pub async fn load_saved(&mut self, bytes: &[u8]) -> anyhow::Result<Value> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.call(json!({ "cmd": "load", "bytes": bytes })).await
    }

    /// `doc[key] = value` in one change.
    pub async fn set(&mut self, url: &str, key: &str, value: Value) -> anyhow::Result<()> {
        let cmd = json!({ "cmd": "set", "url": url, "key": key, "value": value });
        self.call(cmd).await.map(drop)
    }

    /// `doc[in…][key] = value` in one change, inside the map at the path `inside`.
    pub async fn set_in(
        &mut self,
        url: &str,
        inside: &[&str],
        key: &str,
        value: Value,
    ) -> anyhow::Result<()> {
        let cmd = json!({ "cmd": "set", "url": url, "in": inside, "key": key, "value": value });
        self.call(cmd).await.map(drop)
    }

    /// `doc[key].push(value)` (creating the list if missing); returns the new length.
    pub async fn push(&mut self, url: &str, key: &str, value: Value) -> anyhow::Result<u64> {
        let cmd = json!({ "cmd": "push", "url": url, "key": key, "value": value });
        let reply = self.call(cmd).await?;
        reply["length"]
            .as_u64()
            .ok_or_else(|| anyhow!("no length in {reply}"))
    }

    /// Waits until `doc[key]` deep-equals `value`; returns the document.
    pub async fn wait_for(&mut self, url: &str, key: &str, value: Value) -> anyhow::Result<Value> {
        let cmd = json!({
            "cmd": "waitFor", "url": url, "key": key, "value": value, "timeoutMs": DEFAULT_WAIT_MS,
        });
        Ok(self.call(cmd).await?["doc"].take())
    }

    /// Waits until `doc[key]` is a list with at least `length` items; returns the document.
    pub async fn wait_for_length(
        &mut self,
        url: &str,
        key: &str,
        length: usize,
    ) -> anyhow::Result<Value> {
        let cmd = json!({
            "cmd": "waitForLength", "url": url, "key": key, "length": length,
            "timeoutMs": DEFAULT_WAIT_MS,
        });
        Ok(self.call(cmd).await?["doc"].take())
    }

    /// Waits until a connected remote peer (the server) has acknowledged exactly our current
    /// heads of the document, i.e. holds everything this peer has.
    pub async fn wait_synced(&mut self, url: &str) -> anyhow::Result<()> {
        let cmd = json!({ "cmd": "waitSynced", "url": url, "timeoutMs": DEFAULT_WAIT_MS });
        self.call(cmd).await.map(drop)
    }

    /// Waits until the server answered our `join` with `peer`; returns the remote peer ids.
    pub async fn wait_connected(&mut self) -> anyhow::Result<Vec<String>> {
        let cmd = json!({ "cmd": "waitConnected", "timeoutMs": DEFAULT_WAIT_MS });
        let reply = self.call(cmd).await?;
        let peers = reply["peers"]
            .as_array()
            .ok_or_else(|| anyhow!("no peers in {reply}"))?;
        Ok(peers
            .iter()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect())
    }

    /// Takes the network away (local edits keep working offline).
    pub async fn disconnect(&mut self) -> anyhow::Result<()> {
        self.call(json!({ "cmd": "disconnect" })).await.map(drop)
    }

    /// Adds a fresh WebSocket client adapter for the same URL: reconnects and re-syncs.
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        self.call(json!({ "cmd": "reconnect" })).await.map(drop)
    }

    /// Like [`JsPeer::reconnect`] but to another URL (e.g. a restarted server on a new port).
    pub async fn reconnect_to(&mut self, url: &str) -> anyhow::Result<()> {
        self.call(json!({ "cmd": "reconnect", "url": url }))
            .await
            .map(drop)
    }

    /// `handle.broadcast(message)` (an ephemeral message).
    pub async fn broadcast(&mut self, url: &str, message: Value) -> anyhow::Result<()> {
        let cmd = json!({ "cmd": "broadcast", "url": url, "message": message });
        self.call(cmd).await.map(drop)
    }

    /// Asks the driver to exit and waits (bounded) for the process; kills it on timeout.
    pub async fn exit(mut self) -> anyhow::Result<ExitStatus> {
        let asked = self
            .call_with_timeout(json!({ "cmd": "exit" }), Duration::from_secs(5))
            .await;
        if let Err(err) = &asked {
            eprintln!("[js-peer {}] exit command: {err:#}", self.peer_id);
        }
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.start_kill()?;
                let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                    .await
                    .context("node did not die after kill")??;
                bail!(
                    "js peer {} did not exit in 5 s; killed ({status})",
                    self.peer_id
                )
            }
        }
    }

    /// Kills the node process at once (a crashed client, from the server's point of view).
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .context("node did not die after kill")??;
        Ok(())
    }

    // ------------------------------------------------------------ internals

    async fn recv(&mut self, deadline: Instant, what: &str) -> anyhow::Result<Value> {
        match tokio::time::timeout_at(deadline, self.lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => {
                let status = self.exit_status().await;
                bail!(
                    "js peer {} exited ({status}) while waiting for {what}",
                    self.peer_id
                )
            }
            Err(_) => bail!("js peer {}: timed out waiting for {what}", self.peer_id),
        }
    }

    /// Queues a non-fatal event; records a fatal one and returns it as an error.
    fn handle_event(&mut self, line: Value) -> anyhow::Result<()> {
        if line.get("event").and_then(Value::as_str) == Some("fatal") {
            let error = line
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| line.to_string(), str::to_owned);
            self.fatal = Some(error);
            self.check_fatal()
        } else {
            self.events.push_back(line);
            Ok(())
        }
    }

    fn check_fatal(&self) -> anyhow::Result<()> {
        match &self.fatal {
            Some(error) => bail!("js peer {} crashed: {error}", self.peer_id),
            None => Ok(()),
        }
    }

    /// Picks up a fatal event already sitting in the channel (after a failed write).
    fn drain_for_fatal(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            if line.get("event").is_some() {
                let _ = self.handle_event(line);
            }
        }
    }

    async fn exit_status(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(err)) => format!("wait failed: {err}"),
            Err(_) => "stdout closed but process still running".to_owned(),
        }
    }
}

fn string_field(reply: &Value, field: &str) -> anyhow::Result<String> {
    reply
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no string {field:?} in reply {reply}"))
}
