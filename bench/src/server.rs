//! Servers started by the bench, each on 127.0.0.1 with a temporary data directory and killed
//! at the end: a labboard binary (`--start-labboard`: port 0, a fresh organizer token), and the
//! reference JavaScript sync server for `compare`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use labboard_protocol::client::Client;
use labboard_protocol::{DocumentId, PeerId};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bound on the server printing its address; it binds before opening its database, so this is
/// only reached if the binary is broken.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The first line the server prints, followed by the bound address.
const LISTENING_PREFIX: &str = "labboard listening on http://";

/// What the reference server's preload (`bench/reference/loopback.mjs`) prints once bound.
const REFERENCE_LISTENING_PREFIX: &str = "reference listening on ";

/// The reference server's entry point inside its npm install.
const REFERENCE_ENTRY: &str = "node_modules/@automerge/automerge-repo-sync-server/src/index.js";

pub struct StartedServer {
    pub addr: SocketAddr,
    pub pid: u32,
    pub organizer_token: String,
    child: Child,
    bin: PathBuf,
    log: String,
    database_url: Option<String>,
    data_dir: TempDir,
}

impl StartedServer {
    /// Starts a node; with `database_url` it keeps everything in that PostgreSQL database
    /// (several nodes started on one database with the same `organizer_token` form a cluster),
    /// else in SQLite in its data directory.
    pub async fn start(
        bin: &Path,
        log: &str,
        database_url: Option<&str>,
        organizer_token: Option<&str>,
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir().context("creating a temporary data directory")?;
        // Random and unguessable enough for a loopback run; never printed.
        let organizer_token = organizer_token
            .map_or_else(|| format!("bench-{}", DocumentId::random()), str::to_owned);
        let (child, pid, addr) = spawn_labboard(
            bin,
            log,
            "127.0.0.1:0",
            data_dir.path(),
            database_url,
            &organizer_token,
        )
        .await?;
        Ok(Self {
            addr,
            pid,
            organizer_token,
            child,
            bin: bin.to_owned(),
            log: log.to_owned(),
            database_url: database_url.map(str::to_owned),
            data_dir,
        })
    }

    /// SIGKILL, as when a machine dies: no shutdown, nothing flushed.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the server")
    }

    /// Stops the server the way an operator would (SIGTERM: it stores and compacts every open
    /// board) and starts it again on the same address and data, as after a reboot: every board
    /// is then loaded from storage when a phone asks for it. Returns the new process id.
    pub async fn restart(&mut self) -> anyhow::Result<u32> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await
            .context("running kill -TERM")?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.pid);
        match tokio::time::timeout(START_TIMEOUT, self.child.wait()).await {
            Ok(exit) => {
                exit.context("waiting for the server to stop")?;
            }
            Err(_) => {
                self.child
                    .kill()
                    .await
                    .context("killing a server that would not stop")?;
            }
        }
        let (child, pid, addr) = spawn_labboard(
            &self.bin,
            &self.log,
            &self.addr.to_string(),
            self.data_dir.path(),
            self.database_url.as_deref(),
            &self.organizer_token,
        )
        .await?;
        anyhow::ensure!(addr == self.addr, "restarted on {addr}, not {}", self.addr);
        self.child = child;
        self.pid = pid;
        Ok(pid)
    }

    /// Kills the server and waits for it (then the data directory is removed).
    pub async fn stop(self) -> anyhow::Result<()> {
        stop(self.child).await
    }
}

/// Connection caps a benchmarked server gets: more than any scenario opens.
const BENCH_MAX_CONNECTIONS: &str = "1000000";

async fn spawn_labboard(
    bin: &Path,
    log: &str,
    listen: &str,
    data_dir: &Path,
    database_url: Option<&str>,
    organizer_token: &str,
) -> anyhow::Result<(Child, u32, SocketAddr)> {
    let mut command = Command::new(bin);
    command
        .env("LABBOARD_ADMIN_TOKEN", organizer_token)
        .env_remove("LABBOARD_ADMIN_TOKEN_FILE")
        // Every simulated phone connects from 127.0.0.1: a school's worth of labs behind one
        // address. The server still lowers the total to what its file limit allows.
        .env(
            "LABBOARD_MAX_CONNECTIONS_PER_ADDRESS",
            BENCH_MAX_CONNECTIONS,
        )
        .env("LABBOARD_MAX_CONNECTIONS", BENCH_MAX_CONNECTIONS)
        .arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--log")
        .arg(log);
    match database_url {
        Some(url) => command.arg("--database-url").arg(url),
        None => command.env_remove("LABBOARD_DATABASE_URL"),
    };
    spawn(command, LISTENING_PREFIX, &bin.display().to_string()).await
}

/// The reference automerge-repo sync server (`@automerge/automerge-repo-sync-server`, installed
/// with npm in `dir`), with its file storage in a temporary directory. Its own code listens on
/// every interface; the preload `loopback.mjs` in `dir` binds it to 127.0.0.1 instead.
pub struct StartedReference {
    pub addr: SocketAddr,
    pub pid: u32,
    child: Child,
    _data_dir: TempDir,
}

impl StartedReference {
    pub async fn start(node: &str, dir: &Path) -> anyhow::Result<Self> {
        // It runs in its data directory: every path it gets must be absolute.
        let dir = &std::fs::canonicalize(dir)
            .with_context(|| format!("the reference server's directory {}", dir.display()))?;
        let entry = dir.join(REFERENCE_ENTRY);
        if !entry.is_file() {
            bail!(
                "{} is missing: install the reference server with `npm ci --prefix {}`",
                entry.display(),
                dir.display()
            );
        }
        let data_dir = tempfile::tempdir().context("creating a temporary data directory")?;
        let mut command = Command::new(node);
        command
            .arg("--import")
            .arg(dir.join("loopback.mjs"))
            .arg(&entry)
            .env("PORT", "0")
            .env("DATA_DIR", data_dir.path())
            // It serves static files from `public` under its working directory.
            .current_dir(data_dir.path());
        let (child, pid, addr) =
            spawn(command, REFERENCE_LISTENING_PREFIX, "the reference server").await?;
        wait_until_it_syncs(addr).await?;
        Ok(Self {
            addr,
            pid,
            child,
            _data_dir: data_dir,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        stop(self.child).await
    }
}

/// Starts a server and reads its address from the first stdout line that starts with
/// `prefix`; later lines are drained so it never blocks on a full pipe.
async fn spawn(
    mut command: Command,
    prefix: &str,
    what: &str,
) -> anyhow::Result<(Child, u32, SocketAddr)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let pid = child
        .id()
        .with_context(|| format!("{what} exited at once"))?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(START_TIMEOUT, async {
        loop {
            let Some(line) = lines.next_line().await? else {
                bail!("{what} exited before printing its address");
            };
            if let Some(addr) = line.strip_prefix(prefix) {
                return addr
                    .trim()
                    .parse::<SocketAddr>()
                    .with_context(|| format!("no address in {line:?}"));
            }
        }
    })
    .await
    .with_context(|| format!("waiting for {what} to print its address"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, pid, addr))
}

/// The reference server binds its port before its WebSocket adapter listens for connections
/// (that waits for its storage): a phone connecting in between is dropped. Ready is when a
/// handshake completes.
async fn wait_until_it_syncs(addr: SocketAddr) -> anyhow::Result<()> {
    let url = format!("ws://{addr}");
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        match Client::connect_with_timeout(&url, PeerId::random(), Duration::from_secs(2)).await {
            Ok(client) => {
                client.close().await;
                return Ok(());
            }
            Err(err) if tokio::time::Instant::now() >= deadline => {
                return Err(err).context("the reference server never completed a handshake");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn stop(mut child: Child) -> anyhow::Result<()> {
    if let Some(status) = child.try_wait()? {
        bail!("the server had already exited ({status})");
    }
    child.kill().await.context("killing the server")
}
