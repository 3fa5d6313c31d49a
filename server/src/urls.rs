//! The addresses people use to reach this server.

use std::net::{IpAddr, SocketAddr};

/// `http` or `https`: what the listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `Https` when TLS is on.
    pub fn of(tls: bool) -> Self {
        if tls {
            Self::Https
        } else {
            Self::Http
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// `http://<ip>:<port>` for every non-loopback IPv4 address, when bound to all interfaces:
/// what a phone on the same network can open.
pub fn lan_urls(bound: SocketAddr) -> Vec<String> {
    lan_urls_with(bound, Scheme::Http)
}

/// [`lan_urls`] with the given scheme.
pub fn lan_urls_with(bound: SocketAddr, scheme: Scheme) -> Vec<String> {
    if !bound.ip().is_unspecified() {
        return Vec::new();
    }
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let scheme = scheme.as_str();
    interfaces
        .into_iter()
        .filter(|iface| !iface.is_loopback())
        .filter_map(|iface| match iface.ip() {
            IpAddr::V4(ip) => Some(format!("{scheme}://{ip}:{}", bound.port())),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The base of join links: the configured public URL, else the first LAN address, else the
/// bound address itself.
pub fn public_base(configured: Option<&str>, bound: SocketAddr) -> String {
    public_base_with(configured, bound, Scheme::Http)
}

/// [`public_base`] with the given scheme for the defaults (a configured URL is kept as it is).
pub fn public_base_with(configured: Option<&str>, bound: SocketAddr, scheme: Scheme) -> String {
    if let Some(url) = configured.map(str::trim).filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_owned();
    }
    if let Some(url) = lan_urls_with(bound, scheme).into_iter().next() {
        return url;
    }
    let scheme = scheme.as_str();
    if bound.ip().is_unspecified() {
        return format!("{scheme}://localhost:{}", bound.port());
    }
    format!("{scheme}://{bound}")
}

/// The base of join links with an ACME certificate for `domain`: `https://domain`, with the
/// port unless it is 443.
pub fn acme_base(domain: &str, bound: SocketAddr) -> String {
    match bound.port() {
        443 => format!("https://{domain}"),
        port => format!("https://{domain}:{port}"),
    }
}

/// The link facilitators open to create labs: the organizer token rides in the fragment, which
/// browsers never send to a server, so it reaches no server or proxy log.
pub fn organizer_link(base: &str, organizer_token: &str) -> String {
    format!("{base}/new#organizer={organizer_token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_url_wins_and_loses_its_trailing_slash() {
        let bound: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            public_base(Some("http://lab.local:80/"), bound),
            "http://lab.local:80"
        );
        assert_eq!(public_base(None, bound), "http://127.0.0.1:8080");
        assert!(lan_urls(bound).is_empty());
    }

    #[test]
    fn with_tls_the_defaults_are_https() {
        let bound: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(
            public_base_with(None, bound, Scheme::Https),
            "https://127.0.0.1:8443"
        );
        let any: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        assert!(public_base_with(None, any, Scheme::Https).starts_with("https://"));
        assert!(lan_urls_with(any, Scheme::Https)
            .iter()
            .all(|url| url.starts_with("https://")));
        assert_eq!(
            acme_base("lab.example.org", "0.0.0.0:443".parse().unwrap()),
            "https://lab.example.org"
        );
        assert_eq!(
            acme_base("lab.example.org", bound),
            "https://lab.example.org:8443"
        );
        // A configured public URL is the administrator's word, scheme included.
        assert_eq!(
            public_base_with(Some("https://lab.example.org/"), bound, Scheme::Https),
            "https://lab.example.org"
        );
    }
}
