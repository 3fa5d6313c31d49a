//! Command-line flags with environment fallbacks. `labboard --help` is the reference.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the server is run.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "labboard",
    version,
    about = "Live shared board for math labs",
    after_help = "Other commands (each with its own --help):\n  labboard organizer-url   print the facilitators' link again\n  labboard backup <file>   copy the database while the server runs\n  labboard healthcheck     ask this machine's server whether it is alive"
)]
pub struct Config {
    /// Address to listen on; phones on the LAN must reach it. Port 0 picks a free port.
    #[arg(long, env = "LABBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Directory for the database and other state; created if missing.
    #[arg(long, env = "LABBOARD_DATA_DIR", default_value = "./labboard-data")]
    pub data_dir: PathBuf,

    /// Log filter, e.g. `info` or `labboard=debug,info`.
    #[arg(long, env = "LABBOARD_LOG", default_value = "info")]
    pub log: String,

    /// Largest WebSocket message accepted, in bytes. A board's first sync is one message
    /// holding the whole board, so this bounds the board size too.
    #[arg(long, env = "LABBOARD_MAX_FRAME_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Unload a document from memory after it had no connection for this long (e.g. `90s`).
    #[arg(long, env = "LABBOARD_IDLE_UNLOAD", default_value = "60s", value_parser = parse_duration)]
    pub idle_unload: Duration,

    /// Ping every connection this often.
    #[arg(long, env = "LABBOARD_PING_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// Drop a connection that sent nothing (not even a pong) for this long. Generous on
    /// purpose: a phone on a busy classroom Wi-Fi may stall for seconds, and dropping it early
    /// only makes it reconnect and resync.
    #[arg(long, env = "LABBOARD_PEER_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub peer_timeout: Duration,

    /// Organizer token, needed to create and list labs. Set it in the environment, or use
    /// --admin-token-file: the flag form is deprecated, because the process list shows it to
    /// every user of the machine. If no token is given, one is generated on first start and
    /// kept in the data directory (file `admin-token`).
    #[arg(
        long,
        env = "LABBOARD_ADMIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "admin_token_file"
    )]
    pub admin_token: Option<String>,

    /// File holding the organizer token (surrounding whitespace is ignored). Keep it readable
    /// by the server's user only.
    #[arg(long, env = "LABBOARD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// How long a join or facilitator sign-in stays valid (a lab day is 3-4 hours).
    #[arg(long, env = "LABBOARD_TOKEN_TTL", default_value = "24h", value_parser = parse_duration)]
    pub token_ttl: Duration,

    /// Base URL phones use to reach this server, for join links and QR codes
    /// (e.g. `http://192.168.1.20:8080`). Default: this machine's first LAN address.
    #[arg(long, env = "LABBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Close a connection that has not sent `join` within this time.
    #[arg(long, env = "LABBOARD_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Close an HTTP connection whose request headers have not all arrived within this time.
    /// Also bounds how long an idle keep-alive connection stays open.
    #[arg(long, env = "LABBOARD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,

    /// Most open connections (HTTP and WebSocket) in all. Lowered at start-up to fit under the
    /// process's open-file limit (`ulimit -n`). Connections over it get a 503.
    #[arg(long, env = "LABBOARD_MAX_CONNECTIONS", default_value_t = 4096, value_parser = parse_count)]
    pub max_connections: usize,

    /// Most open connections from one client address (an IPv6 /64 counts as one). Generous,
    /// because a school's labs may all reach the server through one NAT address, and a phone
    /// opening a page uses up to six. Connections over it get a 503.
    #[arg(long, env = "LABBOARD_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 512, value_parser = parse_count)]
    pub max_connections_per_address: usize,

    /// Delete a lab completely, as `DELETE /api/labs/{labId}` does, once it has been ended for
    /// this long (e.g. `180d`). Off unless set.
    #[arg(long, env = "LABBOARD_RETENTION", value_parser = parse_positive_duration)]
    pub retention: Option<Duration>,

    /// Largest photo accepted, in bytes. Larger uploads get a 413.
    #[arg(long, env = "LABBOARD_MAX_PHOTO_BYTES", default_value_t = DEFAULT_MAX_PHOTO_BYTES, value_parser = parse_count)]
    pub max_photo_bytes: usize,

    /// Most bytes the photos of one lab may take in all. An upload past it gets a 507.
    #[arg(long, env = "LABBOARD_MAX_LAB_PHOTO_BYTES", default_value_t = DEFAULT_MAX_LAB_PHOTO_BYTES, value_parser = parse_byte_count)]
    pub max_lab_photo_bytes: u64,

    /// Log format on standard error: `text` for people, `json` for log collectors (one JSON
    /// object per line).
    #[arg(long, env = "LABBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers are believed, as address
    /// ranges (`127.0.0.1/32`, `10.0.0.0/8`, `::1`); repeat the flag or separate with commas.
    /// Rate limits and the access log then use the client address the proxy names. Without it
    /// those headers are ignored.
    #[arg(long, env = "LABBOARD_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_address_range)]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// PEM certificate chain (leaf first) for HTTPS and WSS on `--listen`. Needs --tls-key.
    /// Both files are read again on SIGHUP; a broken file keeps the current certificate.
    #[arg(long, env = "LABBOARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert. Keep it readable by the
    /// server's user only.
    #[arg(long, env = "LABBOARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Public DNS name to get a certificate for with ACME (Let's Encrypt, TLS-ALPN-01), e.g.
    /// `labboard.district.example.org`; repeat for more names. The name must reach this server
    /// on port 443. Account and certificates are kept in `<data-dir>/acme`.
    #[arg(
        long,
        env = "LABBOARD_ACME_DOMAIN",
        value_delimiter = ',',
        value_parser = crate::acme::parse_domain,
        conflicts_with_all = ["tls_cert", "tls_key"]
    )]
    pub acme_domain: Vec<String>,

    /// Contact for the ACME account, `mailto:it@district.example.org`; repeatable.
    #[arg(
        long,
        env = "LABBOARD_ACME_CONTACT",
        value_delimiter = ',',
        value_parser = crate::acme::parse_contact,
        requires = "acme_domain"
    )]
    pub acme_contact: Vec<String>,

    /// Use Let's Encrypt's staging service (certificates phones do not trust; for trying the
    /// setup without its rate limits).
    #[arg(long, env = "LABBOARD_ACME_STAGING", requires = "acme_domain")]
    pub acme_staging: bool,

    /// Serve `GET /metrics` (and `/readyz`) without a token on this separate address, e.g.
    /// `127.0.0.1:9090`, for a Prometheus on this machine or a private network. Without it,
    /// `/metrics` is on the main address and needs the organizer token.
    #[arg(long, env = "LABBOARD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Keep documents, labs, tokens and photos in this PostgreSQL database, e.g.
    /// `postgres://labboard:secret@db.example/labboard`, instead of the SQLite file in the data
    /// directory. Any number of nodes may share one database (see the README, Several nodes).
    #[arg(long, env = "LABBOARD_DATABASE_URL", value_parser = parse_database_url)]
    pub database_url: Option<DatabaseUrl>,

    /// Rewrite a board as one snapshot after this many stored changes (each a chunk of what one
    /// message brought). Lower loads faster and stores less; higher writes less often.
    #[arg(long, env = "LABBOARD_COMPACT_AFTER_CHUNKS", default_value_t = crate::document::COMPACT_AFTER_CHUNKS, value_parser = parse_count)]
    pub compact_after_chunks: usize,
}

/// A PostgreSQL URL (`--database-url`); shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
            return url.clone();
        };
        let authority_end = url[scheme_end..]
            .find(['/', '?'])
            .map_or(url.len(), |at| scheme_end + at);
        let authority = &url[scheme_end..authority_end];
        match authority.rfind('@') {
            Some(at) => match authority[..at].find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end],
                    &authority[..colon],
                    &url[scheme_end + at..]
                ),
                None => url.clone(),
            },
            None => url.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn parse_database_url(text: &str) -> Result<DatabaseUrl, String> {
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        return Err(
            "expected a PostgreSQL URL, postgres://user:password@host:port/database".into(),
        );
    }
    text.parse::<tokio_postgres::Config>()
        .map_err(|err| format!("not a PostgreSQL URL: {err}"))?;
    Ok(DatabaseUrl(text.to_owned()))
}

/// The format of the log lines (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Default of `--max-photo-bytes`: 4 MiB.
pub const DEFAULT_MAX_PHOTO_BYTES: usize = 4 * 1024 * 1024;
/// Default of `--max-lab-photo-bytes`: 500 MiB.
pub const DEFAULT_MAX_LAB_PHOTO_BYTES: u64 = 500 * 1024 * 1024;

/// A command-line form that still works but will go: logged as a warning at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecated {
    pub flag: &'static str,
    /// What to use instead, and why.
    pub instead: &'static str,
}

/// The organizer token of [`Config::for_tests`].
pub const TEST_ORGANIZER_TOKEN: &str = "test-organizer-token";

impl Config {
    /// The TLS files, when HTTPS is on; an error if only one of the two is set (possible when
    /// the configuration is built in code rather than parsed).
    pub fn tls_files(&self) -> Result<Option<crate::tls::TlsFiles>, crate::tls::TlsError> {
        crate::tls::files_of(self.tls_cert.as_deref(), self.tls_key.as_deref())
    }

    /// Parses `args` (the program name first) with the environment as fallback, and lists the
    /// deprecated forms used, which the caller logs once logging is set up.
    pub fn try_from_args<I, T>(args: I) -> Result<(Self, Vec<Deprecated>), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().try_get_matches_from(args)?;
        let config = Self::from_arg_matches(&matches)?;
        let mut deprecated = Vec::new();
        if matches.value_source("admin_token") == Some(ValueSource::CommandLine) {
            deprecated.push(Deprecated {
                flag: "--admin-token",
                instead: "set LABBOARD_ADMIN_TOKEN or use --admin-token-file: every user of \
                          this machine can read the command line in the process list",
            });
        }
        Ok((config, deprecated))
    }

    /// A configuration for tests: loopback, the given data directory, quiet logs.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            log: "warn".into(),
            max_frame_bytes: 16 * 1024 * 1024,
            idle_unload: Duration::from_secs(60),
            ping_interval: Duration::from_secs(15),
            peer_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_address: 512,
            admin_token: Some(TEST_ORGANIZER_TOKEN.into()),
            admin_token_file: None,
            token_ttl: Duration::from_secs(24 * 3600),
            public_url: None,
            retention: None,
            max_photo_bytes: DEFAULT_MAX_PHOTO_BYTES,
            max_lab_photo_bytes: DEFAULT_MAX_LAB_PHOTO_BYTES,
            log_format: LogFormat::Text,
            trusted_proxy: Vec::new(),
            tls_cert: None,
            tls_key: None,
            acme_domain: Vec::new(),
            acme_contact: Vec::new(),
            acme_staging: false,
            metrics_listen: None,
            database_url: None,
            compact_after_chunks: crate::document::COMPACT_AFTER_CHUNKS,
        }
    }
}

const SECONDS_PER_DAY: u64 = 24 * 3600;

/// Parses `250ms`, `30s`, `5m`, `1h`, `180d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 500ms, 5m, 1h or 180d"))?;
    match unit {
        "d" => number
            .checked_mul(SECONDS_PER_DAY)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long")),
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!(
            "unknown unit `{unit}` in `{text}`: use ms, s, m, h or d"
        )),
    }
}

/// A [`parse_duration`] that is not zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("`{text}` must be longer than zero")),
        duration => Ok(duration),
    }
}

/// A count of at least 1.
fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(count) => Ok(count),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// A number of bytes of at least 1.
fn parse_byte_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(count) => Ok(count),
        Err(_) => Err(format!("`{text}` is not a whole number of bytes")),
    }
}

/// An address range such as `10.0.0.0/8` or `fd00::/8`; a bare address is a range of one.
fn parse_address_range(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    Err(format!(
        "`{text}` is not an address range like 10.0.0.0/8, 127.0.0.1/32 or ::1/128"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(
            parse_duration("180d"),
            Ok(Duration::from_secs(180 * 86_400))
        );
        assert!(parse_duration("99999999999999999d").is_err());
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn database_urls_are_checked_and_logged_without_their_password() {
        let config = Config::try_parse_from([
            "labboard",
            "--database-url",
            "postgres://labboard:s3cret@db.example:5432/labboard?sslmode=disable",
        ])
        .unwrap();
        let url = config.database_url.unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://labboard:***@db.example:5432/labboard?sslmode=disable"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let socket = "postgres://labboard@/labboard?host=/run/postgresql";
        let url = parse_database_url(socket).unwrap();
        assert_eq!(url.redacted(), socket);
        for wrong in ["mysql://x@y/z", "labboard.db", "postgres://u@h/d?nosuch=1"] {
            let err = Config::try_parse_from(["labboard", "--database-url", wrong]).unwrap_err();
            assert!(err.to_string().contains("PostgreSQL URL"), "{wrong}: {err}");
        }
    }

    #[test]
    fn defaults_are_what_the_readme_says() {
        let config = Config::try_parse_from(["labboard"]).unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("./labboard-data"));
        assert_eq!(config.idle_unload, Duration::from_secs(60));
        assert_eq!(config.peer_timeout, Duration::from_secs(60));
        assert_eq!(config.token_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.admin_token, None);
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.max_connections, 4096);
        assert_eq!(config.max_connections_per_address, 512);
        assert_eq!(config.retention, None);
        assert_eq!(config.database_url, None);
        assert_eq!(config.max_photo_bytes, 4 * 1024 * 1024);
        assert_eq!(config.max_lab_photo_bytes, 500 * 1024 * 1024);
        let config = Config::try_parse_from([
            "labboard",
            "--max-photo-bytes",
            "1000",
            "--max-lab-photo-bytes",
            "5000",
        ])
        .unwrap();
        assert_eq!(config.max_photo_bytes, 1000);
        assert_eq!(config.max_lab_photo_bytes, 5000);
        let config = Config::try_parse_from(["labboard", "--retention", "12h"]).unwrap();
        assert_eq!(config.retention, Some(Duration::from_secs(12 * 3600)));
        assert!(Config::try_parse_from(["labboard", "--retention", "0d"]).is_err());
    }

    #[test]
    fn the_admin_token_flag_is_deprecated_and_a_file_is_the_alternative() {
        let (config, deprecated) =
            Config::try_from_args(["labboard", "--admin-token", "secret"]).unwrap();
        assert_eq!(config.admin_token.as_deref(), Some("secret"));
        assert_eq!(deprecated.len(), 1);
        assert_eq!(deprecated[0].flag, "--admin-token");

        let (config, deprecated) =
            Config::try_from_args(["labboard", "--admin-token-file", "/run/secrets/org"]).unwrap();
        assert_eq!(
            config.admin_token_file,
            Some(PathBuf::from("/run/secrets/org"))
        );
        assert!(deprecated.is_empty());

        let both = ["labboard", "--admin-token", "x", "--admin-token-file", "f"];
        assert!(Config::try_from_args(both).is_err());
    }

    #[test]
    fn the_tls_files_come_together() {
        let config =
            Config::try_parse_from(["labboard", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
                .unwrap();
        assert_eq!(config.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(config.tls_key, Some(PathBuf::from("k.pem")));
        for args in [
            ["labboard", "--tls-cert", "c.pem"],
            ["labboard", "--tls-key", "k.pem"],
        ] {
            let err = Config::try_parse_from(args).unwrap_err().to_string();
            assert!(err.contains("--tls-"), "{err}");
        }
        let config = Config::try_parse_from(["labboard"]).unwrap();
        assert_eq!((config.tls_cert, config.tls_key), (None, None));
    }

    #[test]
    fn acme_flags_parse_and_check() {
        let config = Config::try_parse_from([
            "labboard",
            "--acme-domain",
            "labboard.example.org",
            "--acme-domain",
            "Board.Example.org.",
            "--acme-contact",
            "mailto:it@example.org",
            "--acme-staging",
        ])
        .unwrap();
        assert_eq!(
            config.acme_domain,
            ["labboard.example.org", "board.example.org"]
        );
        assert_eq!(config.acme_contact, ["mailto:it@example.org"]);
        assert!(config.acme_staging);
        let config = Config::try_parse_from(["labboard"]).unwrap();
        assert!(config.acme_domain.is_empty() && !config.acme_staging);

        let refused: [&[&str]; 8] = [
            &["labboard", "--acme-domain", "192.168.1.20"],
            &["labboard", "--acme-domain", "*.example.org"],
            &["labboard", "--acme-domain", "https://example.org"],
            &["labboard", "--acme-domain", "localhost"],
            &[
                "labboard",
                "--acme-domain",
                "a.example.org",
                "--acme-contact",
                "it@example.org",
            ],
            &["labboard", "--acme-contact", "mailto:it@example.org"],
            &["labboard", "--acme-staging"],
            &[
                "labboard",
                "--acme-domain",
                "a.example.org",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
            ],
        ];
        for args in refused {
            assert!(Config::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn limits_must_be_positive() {
        for args in [
            ["labboard", "--max-connections", "0"],
            ["labboard", "--max-connections-per-address", "0"],
            ["labboard", "--header-read-timeout", "0s"],
            ["labboard", "--max-connections", "many"],
            ["labboard", "--max-photo-bytes", "0"],
            ["labboard", "--max-lab-photo-bytes", "0"],
        ] {
            assert!(Config::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn log_format_and_trusted_proxies_parse() {
        let config = Config::try_parse_from(["labboard"]).unwrap();
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.trusted_proxy.is_empty());
        let config = Config::try_parse_from([
            "labboard",
            "--log-format",
            "json",
            "--trusted-proxy",
            "10.1.2.3/8, ::1",
            "--trusted-proxy",
            "192.168.1.7",
        ])
        .unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        let ranges: Vec<String> = config.trusted_proxy.iter().map(|n| n.to_string()).collect();
        assert_eq!(ranges, ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]);
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0/8"] {
            let err = Config::try_parse_from(["labboard", "--trusted-proxy", bad]).unwrap_err();
            assert!(
                err.to_string().contains("not an address range"),
                "{bad}: {err}"
            );
        }
        assert!(Config::try_parse_from(["labboard", "--log-format", "xml"]).is_err());
    }
}
