//! The addresses people use to reach this server.

use std::net::{IpAddr, SocketAddr};

/// `http://<ip>:<port>` for every non-loopback IPv4 address, when bound to all interfaces:
/// what a phone on the same network can open.
pub fn lan_urls(bound: SocketAddr) -> Vec<String> {
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
            IpAddr::V4(ip) => Some(format!("http://{ip}:{}", bound.port())),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The base of join links: the configured public URL, else the first LAN address, else the
/// bound address itself.
pub fn public_base(configured: Option<&str>, bound: SocketAddr) -> String {
    if let Some(url) = configured.map(str::trim).filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_owned();
    }
    if let Some(url) = lan_urls(bound).into_iter().next() {
        return url;
    }
    if bound.ip().is_unspecified() {
        return format!("http://localhost:{}", bound.port());
    }
    format!("http://{bound}")
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
}
