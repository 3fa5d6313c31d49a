//! Certificates from Let's Encrypt with ACME (`--acme-domain`, `--acme-contact`,
//! `--acme-staging`), validated with TLS-ALPN-01 on the listening port, by `rustls-acme`.
//!
//! The ACME account key and the certificates are kept in `<data-dir>/acme` (owner-only), so a
//! restart reuses them instead of asking again. A task drives ordering and renewal for as long
//! as the server runs; until the first certificate is there, HTTPS handshakes fail (and are
//! logged at debug), which is all a phone could get anyway.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use rustls_acme::caches::DirCache;
use rustls_acme::AcmeConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::tls::{server_config, ServerTls, TlsError};

/// The folder under the data directory that holds the ACME account and certificates.
pub const CACHE_DIR: &str = "acme";

/// What `--acme-*` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub domains: Vec<String>,
    pub contacts: Vec<String>,
    pub staging: bool,
}

impl AcmeSettings {
    /// The settings of a configuration, if `--acme-domain` is given.
    pub fn of(config: &crate::Config) -> Option<Self> {
        (!config.acme_domain.is_empty()).then(|| Self {
            domains: config.acme_domain.clone(),
            contacts: config.acme_contact.clone(),
            staging: config.acme_staging,
        })
    }
}

/// A DNS name a public CA can issue for with TLS-ALPN-01: letters, digits and hyphens in dot
/// separated labels, at least two labels, no IP address, no wildcard (TLS-ALPN-01 cannot
/// validate one), no scheme or port. Lowercased, without a trailing dot.
pub fn parse_domain(text: &str) -> Result<String, String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "`{text}` is an IP address: ACME needs a public DNS name (use --tls-cert for an address)"
        ));
    }
    if name.starts_with("*.") {
        return Err(format!(
            "`{text}` is a wildcard: TLS-ALPN-01 validates single names only"
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(format!(
            "`{text}` is not a public DNS name like labboard.district.example.org"
        ));
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("`{text}` is not a public DNS name"));
    }
    Ok(name)
}

/// An ACME contact: `mailto:` and an address with one `@`.
pub fn parse_contact(text: &str) -> Result<String, String> {
    let text = text.trim();
    let Some(address) = text.strip_prefix("mailto:") else {
        return Err(format!(
            "`{text}` is not a contact like mailto:it@district.example.org"
        ));
    };
    match address.split_once('@') {
        Some((user, host))
            if !user.is_empty()
                && host.contains('.')
                && !host.contains('@')
                && !address.contains(char::is_whitespace) =>
        {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "`{text}` has no valid e-mail address after mailto:"
        )),
    }
}

/// Creates `<data_dir>/acme` if missing, readable by the server's user only (it holds the
/// account key and the certificates' private keys), and returns its path.
pub fn prepare_cache_dir(data_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = data_dir.join(CACHE_DIR);
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// Starts getting and renewing certificates for `settings` in a task on `tracker` that ends
/// with `shutdown`, and returns the listener's TLS settings, which answer validation
/// handshakes and serve the certificate once there.
pub fn start(
    settings: &AcmeSettings,
    data_dir: &Path,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<ServerTls, TlsError> {
    let cache = prepare_cache_dir(data_dir).map_err(|err| {
        TlsError::Setup(format!(
            "creating the ACME cache {}: {err}",
            data_dir.join(CACHE_DIR).display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut state = AcmeConfig::new_with_provider(&settings.domains, Arc::clone(&provider))
        .contact(&settings.contacts)
        .cache(DirCache::new(cache.clone()))
        .directory_lets_encrypt(!settings.staging)
        .state();
    let tls = ServerTls::with_challenge(
        server_config(state.resolver())?,
        state.challenge_rustls_config_with_provider(provider),
    );
    tracing::info!(
        domains = ?settings.domains,
        staging = settings.staging,
        cache = %cache.display(),
        "getting TLS certificates with ACME (TLS-ALPN-01 on this port)"
    );
    tracker.spawn(async move {
        loop {
            let event = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                event = state.next() => event,
            };
            match event {
                Some(Ok(done)) => tracing::info!(event = ?done, "ACME"),
                Some(Err(err)) => tracing::error!(error = %err, "ACME: no certificate yet or renewal failed; retrying"),
                None => return,
            }
        }
    });
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn domains_must_be_public_dns_names() {
        assert_eq!(
            parse_domain(" Labboard.Example.org. ").unwrap(),
            "labboard.example.org"
        );
        assert_eq!(parse_domain("a-b.c.example").unwrap(), "a-b.c.example");
        for bad in [
            "192.168.1.20",
            "::1",
            "*.example.org",
            "localhost",
            "https://example.org",
            "example.org:443",
            "-a.example.org",
            "a..example.org",
            "exa mple.org",
            "1.2.3.4.5",
            "",
        ] {
            assert!(parse_domain(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}.org", "a".repeat(64));
        assert!(parse_domain(&long).is_err());
    }

    #[test]
    fn contacts_are_mailto_addresses() {
        assert_eq!(
            parse_contact("mailto:it@district.example.org").unwrap(),
            "mailto:it@district.example.org"
        );
        for bad in [
            "it@district.example.org",
            "mailto:",
            "mailto:it",
            "mailto:@example.org",
            "mailto:it@localhost",
            "mailto:it@@example.org",
            "mailto:i t@example.org",
            "tel:+15551234",
        ] {
            assert!(parse_contact(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_come_from_the_flags() {
        let config = crate::Config::try_parse_from([
            "labboard",
            "--acme-domain",
            "a.example.org,b.example.org",
            "--acme-contact",
            "mailto:it@example.org",
        ])
        .unwrap();
        assert_eq!(
            AcmeSettings::of(&config),
            Some(AcmeSettings {
                domains: vec!["a.example.org".into(), "b.example.org".into()],
                contacts: vec!["mailto:it@example.org".into()],
                staging: false,
            })
        );
        let config = crate::Config::try_parse_from(["labboard"]).unwrap();
        assert_eq!(AcmeSettings::of(&config), None);
    }

    #[test]
    fn the_cache_dir_is_created_owner_only_and_reused() {
        let data = tempfile::tempdir().unwrap();
        let dir = prepare_cache_dir(&data.path().join("fresh")).unwrap();
        assert_eq!(dir, data.path().join("fresh").join(CACHE_DIR));
        assert!(dir.is_dir());
        std::fs::write(dir.join("kept"), "x").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            prepare_cache_dir(&data.path().join("fresh")).unwrap();
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert_eq!(std::fs::read_to_string(dir.join("kept")).unwrap(), "x");
        // A file where the folder should be is a clear error.
        let blocked = data.path().join("blocked");
        std::fs::create_dir_all(&blocked).unwrap();
        std::fs::write(blocked.join(CACHE_DIR), "not a folder").unwrap();
        assert!(prepare_cache_dir(&blocked).is_err());
    }

    #[tokio::test]
    async fn starting_acme_prepares_the_cache_and_the_validation_config() {
        let data = tempfile::tempdir().unwrap();
        let settings = AcmeSettings {
            domains: vec!["labboard.example.org".into()],
            contacts: vec!["mailto:it@example.org".into()],
            staging: true,
        };
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let tls = start(&settings, data.path(), &tracker, stop.clone()).unwrap();
        assert!(data.path().join(CACHE_DIR).is_dir());
        assert!(format!("{tls:?}").contains("acme: true"));
        // Stopping ends the ACME task (no network is needed for that).
        stop.cancel();
        tracker.close();
        tracker.wait().await;
    }
}
