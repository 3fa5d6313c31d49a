//! The `labboard` binary: parse the configuration, start logging, bind, and serve until SIGINT
//! or SIGTERM.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Parser;
use labboard::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log)
                .with_context(|| format!("invalid log filter `{}`", config.log))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    // Tests and scripts read this first line to find the port.
    println!("labboard listening on http://{bound}");
    for url in phone_urls(bound) {
        println!("open on a phone on this network: {url}");
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    labboard::run(listener, config, shutdown)
        .await
        .context("running the server")
}

/// The URLs phones can use: every non-loopback IPv4 address when bound to all interfaces.
fn phone_urls(bound: SocketAddr) -> Vec<String> {
    if !bound.ip().is_unspecified() {
        return Vec::new();
    }
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    interfaces
        .into_iter()
        .filter(|iface| !iface.is_loopback())
        .filter_map(|iface| match iface.ip() {
            IpAddr::V4(ip) => Some(format!("http://{ip}:{}/", bound.port())),
            IpAddr::V6(_) => None,
        })
        .collect()
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
