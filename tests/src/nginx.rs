//! nginx in front of several nodes on the shipped configuration: the bench's module, shared so
//! that the integration tests and the benchmarks run nginx the same way.

#[path = "../../bench/src/nginx.rs"]
mod shared;

pub use shared::{find_bin, StartedNginx};

/// The shipped site configuration.
pub fn shipped_config() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/labboard.conf")
}

/// Starts nginx (Debian's package, which `scripts/test` installs) on the shipped configuration
/// with `nodes` as the servers of every upstream.
pub async fn start_shipped(nodes: &[std::net::SocketAddr]) -> anyhow::Result<StartedNginx> {
    StartedNginx::start(&find_bin()?, &shipped_config(), nodes).await
}
