//! Who is asking: the client address behind trusted reverse proxies, and the access log.
//!
//! The socket peer is the client unless it is a trusted proxy (`--trusted-proxy`); then the
//! `Forwarded: for=` or `X-Forwarded-For` list is read from the right, skipping trusted proxies,
//! and the first address that is not one is the client. A client can put anything at the left
//! of that list, so only the part the trusted proxies appended is believed. Rate limits and the
//! access log use this address; the connection caps stay on the socket address (see
//! [`crate::listener`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::AppState;

/// Target of the access log lines, for filters such as `--log labboard::access=off,info`.
pub const ACCESS_LOG_TARGET: &str = "labboard::access";

/// Address ranges of the reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self { ranges }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ranges.iter().any(|range| range.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let Some(hops) = forwarded_for(headers).or_else(|| x_forwarded_for(headers)) else {
            return peer;
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.contains(client) {
                        return client;
                    }
                }
                // "unknown", an obfuscated name or garbage: the last address known is the
                // nearest the proxies can vouch for.
                None => return client,
            }
        }
        client
    }
}

/// The `for=` addresses of the `Forwarded` headers (RFC 7239), in order; `None` if there is no
/// such header.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then_some(value)
            });
            hops.push(node.and_then(|node| parse_node(node.trim().trim_matches('"'))));
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// The addresses of the `X-Forwarded-For` headers, in order; `None` if there is no such header.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(value) => hops.extend(value.split(',').map(|hop| parse_node(hop.trim()))),
            Err(_) => hops.push(None),
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

/// The client address of a request, as [`TrustedProxies::client_ip`] resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<ClientIp>() {
            return Ok(*client);
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| ClientIp(peer.ip().to_canonical()))
            .ok_or((
                StatusCode::INTERNAL_SERVER_ERROR,
                "the client address is unknown",
            ))
    }
}

/// Resolves the client address for the handlers, and logs one line per request at `info`:
/// method, route template (never the path as sent, nor the query: they may carry codes,
/// tokens and lab ids), status, latency and client address. A WebSocket is logged once, when
/// it is upgraded (status 101).
pub async fn log_request(
    State(app): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| app.trusted_proxies.client_ip(peer.ip(), request.headers()));
    if let Some(peer) = peer {
        request.extensions_mut().insert(ClientIp(peer));
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let peer = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    tracing::info!(
        target: ACCESS_LOG_TARGET,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_ms,
        peer = %peer,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let sent = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(trusted.client_ip(ip("192.0.2.1"), &sent), ip("192.0.2.1"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.0.0.1"), &sent),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_forwarded_address_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        // The client made up the first entry; the proxies appended the rest.
        let sent = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(trusted.client_ip(peer, &sent), ip("198.51.100.7"));
        // Several headers are one list.
        let sent = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.8:5555"),
        ]);
        assert_eq!(trusted.client_ip(peer, &sent), ip("198.51.100.8"));
        // Only proxies: the leftmost is as far as it goes.
        let sent = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(trusted.client_ip(peer, &sent), ip("10.1.1.1"));
        // Garbage stops the walk at the last address vouched for.
        let sent = headers(&[("x-forwarded-for", "198.51.100.7, not-an-address")]);
        assert_eq!(trusted.client_ip(peer, &sent), peer);
        // No header: the peer itself.
        assert_eq!(trusted.client_ip(peer, &HeaderMap::new()), peer);
    }

    #[test]
    fn the_forwarded_header_is_read_and_wins() {
        let trusted = proxies(&["::1/128", "127.0.0.0/8"]);
        let sent = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711";by=10.0.0.1"#,
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(trusted.client_ip(ip("::1"), &sent), ip("2001:db8:cafe::17"));
        let sent = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &sent), ip("127.0.0.1"));
        let sent = headers(&[("forwarded", "for=192.0.2.60")]);
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), &sent),
            ip("192.0.2.60")
        );
    }
}
