//! A labboard binary started by the bench (`--start-labboard`): 127.0.0.1:0, a temporary data
//! directory, a fresh organizer token; killed at the end.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use labboard_protocol::DocumentId;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bound on the server printing its address; it binds before opening its database, so this is
/// only reached if the binary is broken.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The first line the server prints, followed by the bound address.
const LISTENING_PREFIX: &str = "labboard listening on http://";

pub struct StartedServer {
    pub addr: SocketAddr,
    pub pid: u32,
    pub organizer_token: String,
    child: Child,
    _data_dir: TempDir,
}

impl StartedServer {
    pub async fn start(bin: &Path, log: &str) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir().context("creating a temporary data directory")?;
        // Random and unguessable enough for a loopback run; never printed.
        let organizer_token = format!("bench-{}", DocumentId::random());
        let mut child = Command::new(bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--admin-token")
            .arg(&organizer_token)
            .arg("--log")
            .arg(log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .context("waiting for the server's first line")??;
        let Some(first) = first else {
            bail!("{} exited before printing its address", bin.display());
        };
        let addr = first
            .strip_prefix(LISTENING_PREFIX)
            .with_context(|| format!("unexpected first line from the server: {first:?}"))?
            .trim()
            .parse()
            .with_context(|| format!("no address in {first:?}"))?;
        // Keep reading so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            addr,
            pid,
            organizer_token,
            child,
            _data_dir: data_dir,
        })
    }

    /// Kills the server and waits for it (then the data directory is removed).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the server had already exited ({status})");
        }
        self.child.kill().await.context("killing the server")
    }
}
