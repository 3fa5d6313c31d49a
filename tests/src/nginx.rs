//! nginx in front of several nodes, with the configuration the project ships
//! (`deploy/nginx/labboard.conf`): its upstreams pointed at the test's nodes, listening on a free
//! loopback port. nginx comes from Debian's packages (`scripts/test` installs it) and runs in a
//! temporary directory, as an unprivileged user when the tests run as root.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// How long nginx may take to listen.
const START_WAIT: Duration = Duration::from_secs(15);

/// The shipped configuration.
pub fn shipped_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/labboard.conf")
}

/// A running nginx, stopped when dropped.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    _dir: TempDir,
}

impl Nginx {
    /// Starts nginx on the shipped configuration with `nodes` as the servers of every upstream.
    pub async fn start_shipped(nodes: &[SocketAddr]) -> anyhow::Result<Self> {
        let shipped = std::fs::read_to_string(shipped_config())
            .context("reading the shipped nginx configuration")?;
        let port = free_port()?;
        let site = for_test(&shipped, nodes, port)?;
        let dir = tempfile::tempdir().context("temp dir")?;
        let root = dir.path().display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {root}/nginx.pid;\nerror_log stderr warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {root}/body;\n    \
             proxy_temp_path {root}/proxy;\n    fastcgi_temp_path {root}/fastcgi;\n    \
             uwsgi_temp_path {root}/uwsgi;\n    scgi_temp_path {root}/scgi;\n{site}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .context("nginx is not installed (scripts/test installs it from Debian's packages)")?;
        let mut command = if is_root() {
            // nginx as root would keep a privileged master; the test needs none of that.
            std::process::Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir.path())
                .status()
                .context("chown")?;
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
                .arg(&bin);
            command
        } else {
            Command::new(&bin)
        };
        let child = command
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut nginx = Self {
            addr,
            child,
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(nginx);
            }
            if let Some(status) = nginx.child.try_wait()? {
                bail!("nginx exited at start with {status}");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("nginx did not listen on {addr} within {START_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The shipped site with its upstream servers replaced by `nodes` and listening on `port`.
fn for_test(shipped: &str, nodes: &[SocketAddr], port: u16) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut upstreams = 0;
    let mut listens = 0;
    for line in shipped.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("server 127.0.0.1:") {
            // One placeholder line per node in the shipped file: replace the first, drop the rest.
            if trimmed.starts_with("server 127.0.0.1:8081") {
                upstreams += 1;
                let options = trimmed
                    .split_once(' ')
                    .and_then(|(_, rest)| rest.split_once(' '))
                    .map_or(";", |(_, options)| options);
                for node in nodes {
                    out.push_str(&format!("    server {node} {options}\n"));
                }
            }
            continue;
        }
        if trimmed == "listen 80;" {
            listens += 1;
            out.push_str(&format!("    listen 127.0.0.1:{port};\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if upstreams == 0 || listens != 1 {
        bail!("the shipped nginx configuration no longer has the lines the test replaces");
    }
    Ok(out)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
