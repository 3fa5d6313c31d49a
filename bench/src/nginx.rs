//! nginx in front of several nodes, on the configuration the project ships
//! (`deploy/nginx/labboard.conf`): its upstream servers replaced by the nodes, listening on a free
//! loopback port, in a temporary directory, as an unprivileged user when run as root. Used by
//! the bench and, included as a module of theirs, by the integration tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// How long nginx may take to listen.
const START_WAIT: Duration = Duration::from_secs(15);

/// Connections one nginx worker may hold: two per phone (the phone's and the upstream one),
/// for more phones than any run here connects.
const WORKER_CONNECTIONS: usize = 16384;

/// A running nginx (one process: no master), killed when dropped.
pub struct StartedNginx {
    pub addr: SocketAddr,
    pub pid: u32,
    _child: Child,
    _dir: TempDir,
}

impl StartedNginx {
    /// Starts `bin` on the site `config` with `nodes` as the servers of every upstream.
    pub async fn start(bin: &Path, config: &Path, nodes: &[SocketAddr]) -> anyhow::Result<Self> {
        let shipped = std::fs::read_to_string(config)
            .with_context(|| format!("reading the nginx configuration {}", config.display()))?;
        let port = free_port()?;
        let site = for_nodes(&shipped, nodes, port)?;
        let dir = tempfile::tempdir().context("creating a directory for nginx")?;
        let root = dir.path().display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {root}/nginx.pid;\nerror_log stderr crit;\n\
             worker_rlimit_nofile {};\nevents {{ worker_connections {WORKER_CONNECTIONS}; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {root}/body;\n    \
             proxy_temp_path {root}/proxy;\n    fastcgi_temp_path {root}/fastcgi;\n    \
             uwsgi_temp_path {root}/uwsgi;\n    scgi_temp_path {root}/scgi;\n{site}\n}}\n",
            WORKER_CONNECTIONS * 2 + 64
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).context("writing nginx.conf")?;
        let mut command = if is_root() {
            // nginx as root would keep privileges it does not need here.
            let status = std::process::Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir.path())
                .status()
                .context("running chown")?;
            anyhow::ensure!(status.success(), "chown of the nginx directory failed");
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
                .arg(bin);
            command
        } else {
            Command::new(bin)
        };
        let mut child = command
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
        // setpriv executes nginx in its own process: the pid is nginx's.
        let pid = child.id().context("nginx exited at once")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(Self {
                    addr,
                    pid,
                    _child: child,
                    _dir: dir,
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!("nginx exited at start with {status}");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("nginx did not listen on {addr} within {START_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The nginx binary: `/usr/sbin/nginx` (Debian's package) or `/usr/local/sbin/nginx`.
pub fn find_bin() -> anyhow::Result<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .context("nginx is not installed (Debian's package `nginx`); or give --nginx-bin")
}

/// The shipped site with its upstream servers replaced by `nodes` and listening on `port`.
fn for_nodes(shipped: &str, nodes: &[SocketAddr], port: u16) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut upstreams = 0;
    let mut listens = 0;
    for line in shipped.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("server 127.0.0.1:") {
            // One example line per node in the shipped file: the first becomes every node, with
            // its options; the others go.
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
        bail!("the nginx configuration lacks the upstream and listen lines the bench replaces");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_site_gets_the_nodes_and_a_loopback_port() {
        let shipped = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/labboard.conf"),
        )
        .unwrap();
        let nodes: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().unwrap(),
            "127.0.0.1:4002".parse().unwrap(),
        ];
        let site = for_nodes(&shipped, &nodes, 4000).unwrap();
        assert!(site.contains("listen 127.0.0.1:4000;"));
        assert!(!site.contains("listen 80;"));
        assert!(!site.contains("8081") && !site.contains("8082"));
        assert_eq!(site.matches("server 127.0.0.1:4001 ").count(), 2);
        assert_eq!(site.matches("server 127.0.0.1:4002 ").count(), 2);
        assert!(site.contains("hash $arg_lab consistent;"));
    }
}
