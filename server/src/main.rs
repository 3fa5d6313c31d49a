//! The `labboard` binary: parse the configuration, start logging, bind, and serve until SIGINT
//! or SIGTERM. With TLS on, SIGHUP reloads the certificate and key.

use anyhow::Context;
use labboard::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut config, deprecated) =
        Config::try_from_args(std::env::args_os()).unwrap_or_else(|err| err.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log)
                .with_context(|| format!("invalid log filter `{}`", config.log))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for use_of in deprecated {
        tracing::warn!(
            flag = use_of.flag,
            instead = use_of.instead,
            "deprecated flag"
        );
    }

    // Before binding: a missing or broken certificate stops the start with the file's name.
    let certs = match config.tls_files()? {
        Some(files) => Some(labboard::tls::CertStore::open(files)?),
        None => None,
    };
    let acme = labboard::acme::AcmeSettings::of(&config);
    let scheme = labboard::urls::Scheme::of(certs.is_some() || acme.is_some());
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    // Tests and scripts read this first line to find the port.
    println!("labboard listening on {}://{bound}", scheme.as_str());
    let phone_urls = match &acme {
        // The certificate is for the domain names, not for this machine's addresses.
        Some(acme) => vec![labboard::urls::acme_base(&acme.domains[0], bound)],
        None => labboard::urls::lan_urls_with(bound, scheme),
    };
    for url in phone_urls {
        println!("open on a phone on this network: {url}/");
    }
    let organizer = labboard::secrets::organizer_token(
        config.admin_token.as_deref(),
        config.admin_token_file.as_deref(),
        &config.data_dir,
    )
    .with_context(|| format!("organizer token (data dir {})", config.data_dir.display()))?;
    let base = match (&acme, config.public_url.as_deref()) {
        (Some(acme), None) => labboard::urls::acme_base(&acme.domains[0], bound),
        (_, configured) => labboard::urls::public_base_with(configured, bound, scheme),
    };
    // The one place the organizer token is shown: like a notebook server's token URL, for the
    // person who started the server. The fragment never reaches a server log.
    println!("facilitators create labs at: {base}/new#organizer={organizer}");
    config.admin_token = Some(organizer);

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    #[cfg(unix)]
    if let Some(certs) = &certs {
        tokio::spawn(reload_on_hangup(
            std::sync::Arc::clone(certs),
            shutdown.clone(),
        ));
    }
    labboard::run_with_tls(listener, config, certs, shutdown)
        .await
        .context("running the server")
}

/// Reads the TLS certificate and key again at every SIGHUP, until shutdown.
#[cfg(unix)]
async fn reload_on_hangup(
    certs: std::sync::Arc<labboard::tls::CertStore>,
    shutdown: CancellationToken,
) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGHUP; the TLS certificate is not reloaded without a restart");
            return;
        }
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = hangup.recv() => {
                if received.is_none() {
                    return;
                }
                certs.reload_and_log();
            }
        }
    }
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
