//! `labboard organizer-url`: prints the facilitators' link, with the organizer token, again.
//!
//! The server shows that link on its first start only, so that it does not land in a system
//! journal at every start; this command reads the token the way the server does.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

/// The name of the subcommand, as typed after `labboard`.
pub const SUBCOMMAND: &str = "organizer-url";

/// Prints the link facilitators open to create labs, with the organizer token, from the data
/// directory (or the configured token). Run it as the server's user.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "labboard organizer-url", bin_name = "labboard organizer-url")]
pub struct OrganizerUrlArgs {
    /// The server's data directory.
    #[arg(long, env = "LABBOARD_DATA_DIR", default_value = "./labboard-data")]
    pub data_dir: PathBuf,

    /// Base URL phones use to reach the server, as given to the server.
    #[arg(long, env = "LABBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The server's listening address, for the link when there is no public URL.
    #[arg(long, env = "LABBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// The server's certificate, as given to it: the link then starts with `https://`.
    #[arg(long, env = "LABBOARD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The server's ACME domain names, as given to it: the link is on the first one.
    #[arg(long, env = "LABBOARD_ACME_DOMAIN", value_delimiter = ',')]
    pub acme_domain: Vec<String>,

    /// File holding the organizer token, as given to the server.
    #[arg(long, env = "LABBOARD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The organizer token, when the server is given one in its environment.
    #[arg(
        long,
        env = "LABBOARD_ADMIN_TOKEN",
        hide_env_values = true,
        hide = true,
        conflicts_with = "admin_token_file"
    )]
    pub admin_token: Option<String>,
}

/// The organizer link for `args`; an error if the server never started with this data
/// directory (it generates the token on its first start) or the token cannot be read.
pub fn organizer_url(args: &OrganizerUrlArgs) -> anyhow::Result<String> {
    let token = crate::secrets::existing_organizer_token(
        args.admin_token.as_deref(),
        args.admin_token_file.as_deref(),
        &args.data_dir,
    )
    .with_context(|| {
        format!(
            "reading the organizer token (data dir {})",
            args.data_dir.display()
        )
    })?
    .with_context(|| {
        format!(
            "no organizer token in {}: start the server once with this data directory (it \
             creates one), or pass the token file the server uses with --admin-token-file",
            args.data_dir.display()
        )
    })?;
    // The same base the server prints at start.
    let base = match (args.acme_domain.first(), args.public_url.as_deref()) {
        (Some(domain), None) => crate::urls::acme_base(domain, args.listen),
        (acme, configured) => crate::urls::public_base_with(
            configured,
            args.listen,
            crate::urls::Scheme::of(args.tls_cert.is_some() || acme.is_some()),
        ),
    };
    Ok(crate::urls::organizer_link(&base, &token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn prints_the_stored_token_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let args = OrganizerUrlArgs::try_parse_from([
            "labboard organizer-url",
            "--data-dir",
            data.to_str().unwrap(),
            "--public-url",
            "http://lab.local:8080/",
        ])
        .unwrap();
        let err = organizer_url(&args).unwrap_err();
        assert!(
            format!("{err:#}").contains("start the server once"),
            "{err:#}"
        );
        assert!(!data.exists(), "the command must not create the data dir");

        let token = crate::secrets::organizer_token(None, None, &data).unwrap();
        assert_eq!(
            organizer_url(&args).unwrap(),
            format!("http://lab.local:8080/new#organizer={token}")
        );
    }

    #[test]
    fn the_link_is_https_when_the_server_serves_tls() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = crate::secrets::organizer_token(None, None, &data).unwrap();
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "labboard organizer-url",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:8443",
            ];
            args.extend_from_slice(extra);
            OrganizerUrlArgs::try_parse_from(args).unwrap()
        };
        assert_eq!(
            organizer_url(&parse(&["--tls-cert", "server.crt"])).unwrap(),
            format!("https://127.0.0.1:8443/new#organizer={token}")
        );
        assert_eq!(
            organizer_url(&parse(&["--acme-domain", "labboard.example.org"])).unwrap(),
            format!("https://labboard.example.org:8443/new#organizer={token}")
        );
        assert_eq!(
            organizer_url(&parse(&[])).unwrap(),
            format!("http://127.0.0.1:8443/new#organizer={token}")
        );
    }
}
