//! The `labboard` binary: parse the configuration, start logging, bind, and serve until SIGINT
//! or SIGTERM. With TLS on, SIGHUP reloads the certificate and key.

use anyhow::Context;
use labboard::config::LogFormat;
use labboard::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Subcommands; without one, the server starts.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|arg| arg.to_str()) {
        Some(labboard::organizer::SUBCOMMAND) => return print_organizer_url(&args[1..]),
        Some("backup") => return labboard::backup::main(args.into_iter().skip(1)),
        Some("healthcheck") => return labboard::healthcheck::main(args.into_iter().skip(1)),
        _ => {}
    }
    let (mut config, deprecated) = Config::try_from_args(args).unwrap_or_else(|err| err.exit());
    init_logging(&config)?;
    for use_of in deprecated {
        tracing::warn!(
            flag = use_of.flag,
            instead = use_of.instead,
            "deprecated flag"
        );
    }

    // Before anything is written: a data directory without a database is a first start.
    let first_start = !config
        .data_dir
        .join(labboard::storage::sqlite::DB_FILE)
        .exists();
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
    let organizer = labboard::secrets::load_or_create_organizer_token(
        config.admin_token.as_deref(),
        config.admin_token_file.as_deref(),
        &config.data_dir,
    )
    .with_context(|| format!("organizer token (data dir {})", config.data_dir.display()))?;
    let base = match (&acme, config.public_url.as_deref()) {
        (Some(acme), None) => labboard::urls::acme_base(&acme.domains[0], bound),
        (_, configured) => labboard::urls::public_base_with(configured, bound, scheme),
    };
    // The organizer link is shown on stdout, never through the logger, and on the first start
    // only, so that it does not land in a system journal at every start. The fragment never
    // reaches a server log.
    if first_start || organizer.generated {
        println!(
            "facilitators create labs at: {}",
            labboard::urls::organizer_link(&base, &organizer.token)
        );
        println!(
            "this link is shown on the first start only; `labboard organizer-url` prints it again"
        );
    } else {
        println!(
            "facilitators create labs at: {base}/new (for the link with the organizer token, \
             run `labboard organizer-url --data-dir {}`)",
            config.data_dir.display()
        );
    }
    config.admin_token = Some(organizer.token);

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    #[cfg(unix)]
    tokio::spawn(reload_on_hangup(certs.clone(), shutdown.clone()));
    labboard::run_with_tls(listener, config, certs, shutdown)
        .await
        .context("running the server")
}

/// Logs on standard error, as text or one JSON object per line (`--log-format`).
fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .with_context(|| format!("invalid log filter `{}`", config.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}

/// `labboard organizer-url …`: `args` starts with the subcommand's name.
fn print_organizer_url(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    use clap::Parser;
    let args = labboard::organizer::OrganizerUrlArgs::try_parse_from(args)
        .unwrap_or_else(|err| err.exit());
    println!("{}", labboard::organizer::organizer_url(&args)?);
    Ok(())
}

/// Reads the TLS certificate and key again at every SIGHUP, until shutdown. Without TLS a
/// SIGHUP changes nothing (and, unlike the signal's default, does not stop the server), so a
/// `systemctl reload` is always safe.
#[cfg(unix)]
async fn reload_on_hangup(
    certs: Option<std::sync::Arc<labboard::tls::CertStore>>,
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
                match &certs {
                    Some(certs) => certs.reload_and_log(),
                    None => tracing::info!("SIGHUP: nothing to reload (no --tls-cert)"),
                }
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
