//! The HTTP accept loop, with the limits `axum::serve` does not have.
//!
//! - **Caps.** Every accepted connection takes one place in a total cap (a semaphore permit) and
//!   one in its client address's cap, before a byte of it is read. A connection over either cap
//!   is answered at once with a short `503` JSON body and closed; it never reaches the router,
//!   so it cannot upgrade. A place is held for as long as the socket is open, WebSockets
//!   included: the place travels inside the connection's I/O, which the upgrade hands on.
//! - **Header-read timeout.** hyper closes a connection whose request head has not fully
//!   arrived within the configured time. The clock starts whenever the connection waits for a
//!   head, so it also bounds how long an idle keep-alive connection stays open.
//! - **TLS.** With `--tls-cert`/`--tls-key` each admitted connection first completes a rustls
//!   handshake, within the header-read timeout and inside its place under the caps. A plain
//!   HTTP request on that port gets a short `400` naming `https://`; a failed handshake closes
//!   only its own connection.
//! - **Accept errors.** Running out of file descriptors (`EMFILE`, `ENFILE`) or buffers is logged
//!   once and retried after a growing pause, instead of spinning on the error.
//! - **Shutdown.** When the token fires the listener closes, idle connections close, and a
//!   request in progress finishes first; the connection tasks are tracked by the caller's
//!   [`TaskTracker`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::tls::ServerTls;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::Instrument;

/// File descriptors kept out of the connection cap for everything else the process opens: the
/// listener, the SQLite database with its WAL and shared-memory files on two connections,
/// stdio, the runtime's epoll and wake-up descriptors, and reading the web client's files.
pub const FD_RESERVE: usize = 64;

/// First pause after an accept error other than a single failed connection.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts while errors last.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What a client over a cap is told to wait before trying again, in seconds.
const OVER_CAP_RETRY_AFTER_SECS: u64 = 5;
/// Most refusals logged individually per [`REFUSAL_LOG_INTERVAL`]; an attack would flood the
/// log otherwise.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Request bytes read (and dropped) from a refused connection before answering it, so that
/// closing it does not reset it before the client reads the answer.
const REFUSAL_DRAIN_BYTES: usize = 8 * 1024;

/// The limits on HTTP connections, from the configuration.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

/// The process's soft limit on open files, if the platform has one and it is finite.
pub fn open_file_limit() -> Option<usize> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// `configured`, lowered so that the connections and [`FD_RESERVE`] fit in `open_file_limit`.
pub fn fitting_connection_cap(configured: usize, open_file_limit: Option<usize>) -> usize {
    match open_file_limit {
        Some(limit) => configured.min(limit.saturating_sub(FD_RESERVE)).max(1),
        None => configured,
    }
}

/// Serves `router` on `listener` until `shutdown` fires. Connection tasks go on `tracker`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    serve_with_tls(listener, router, limits, None, shutdown, tracker).await;
}

/// [`serve`], speaking HTTPS when `tls` is given. The TLS handshake happens inside the
/// connection's place under the caps and must finish within the header-read timeout; a plain
/// HTTP request is answered with a `400` naming `https://`, and a failed handshake only closes
/// its own connection.
pub async fn serve_with_tls(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    tls: Option<ServerTls>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let caps = Arc::new(ConnCaps::new(
        limits.max_connections,
        limits.max_connections_per_address,
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut backoff = AcceptBackoff::default();
    let mut refusals = RefusalLog::default();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_connection_error(&err) => {
                tracing::debug!(error = %err, "a connection failed before it was accepted");
                continue;
            }
            Err(err) => {
                let pause = backoff.failed(&err);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        backoff.succeeded();
        let admission = match caps.admit(remote.ip()) {
            Ok(admission) => admission,
            Err(refusal) => {
                crate::ops::metrics().rate_limited(match refusal {
                    Refusal::Total => crate::ops::Limiter::ConnectionsTotal,
                    Refusal::PerAddress => crate::ops::Limiter::ConnectionsPerAddress,
                });
                refusals.record(refusal, remote);
                refuse(stream, refusal);
                continue;
            }
        };
        let admitted = Admitted {
            stream,
            _admission: admission,
        };
        let router = router.clone();
        let http = http.clone();
        let stop = shutdown.clone();
        let tls = tls.clone();
        let handshake_timeout = limits.header_read_timeout;
        tracker.spawn(
            async move {
                match tls {
                    None => serve_http(http, admitted, router, remote, stop).await,
                    Some(tls) => {
                        let handshake = tls_handshake(tls, admitted, handshake_timeout);
                        let secured = tokio::select! {
                            secured = handshake => secured,
                            () = stop.cancelled() => return,
                        };
                        if let Some(secured) = secured {
                            serve_http(http, secured, router, remote, stop).await;
                        }
                    }
                }
            }
            .instrument(tracing::debug_span!("http_conn", remote = %remote)),
        );
    }
    tracing::debug!("stopped accepting connections");
}

/// Serves HTTP/1.1 (with upgrades) on one connection until it ends or `stop` fires.
async fn serve_http<S>(
    http: hyper::server::conn::http1::Builder,
    stream: S,
    router: Router,
    remote: SocketAddr,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // What `into_make_service_with_connect_info` gives handlers.
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request)
    });
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = served {
        // Header timeouts and clients that hang up land here; routine, so debug.
        tracing::debug!(error = %err, "http connection ended with an error");
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The answer to a plain HTTP request on the HTTPS port.
const PLAIN_HTTP_ON_TLS_PORT: &str =
    "This port speaks HTTPS only: open the address with https:// instead of http://.\n";

/// Completes the server side of a TLS handshake within `timeout`. A connection that starts
/// with anything but a TLS record (a plain HTTP request, typically) gets a short `400` in
/// plain text instead; a failed or slow handshake is logged at debug and closed. An ACME
/// validation handshake is completed and closed: it serves no request.
async fn tls_handshake(
    tls: ServerTls,
    mut admitted: Admitted,
    timeout: Duration,
) -> Option<TlsStream<Admitted>> {
    let attempt = async {
        let mut first = [0_u8; 1];
        let peeked = admitted.stream.peek(&mut first).await?;
        if peeked == 1 && first[0] != TLS_HANDSHAKE_RECORD {
            answer_plain_http(&mut admitted).await;
            return Ok::<_, io::Error>(None);
        }
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), admitted).await?;
        let (config, validation) = tls.config_for(&start.client_hello());
        let mut stream = start.into_stream(config).await?;
        if validation {
            tracing::info!("answered an ACME TLS-ALPN-01 validation handshake");
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
            return Ok(None);
        }
        Ok(Some(stream))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(secured)) => secured,
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?timeout, "TLS handshake did not finish in time");
            None
        }
    }
}

/// Reads what a plain HTTP client sent (up to a bound) and answers `400`, then closes.
async fn answer_plain_http(admitted: &mut Admitted) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Read the request head the client has sent so far, so that closing does not reset the
    // connection before the client reads the answer.
    let mut scratch = [0_u8; 1024];
    let mut drained = 0;
    while drained < REFUSAL_DRAIN_BYTES {
        let read = tokio::select! {
            read = admitted.stream.read(&mut scratch) => read,
            () = tokio::time::sleep(PLAIN_HTTP_DRAIN_WAIT) => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                drained += read;
                if scratch[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\n\
         content-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\n\
         x-content-type-options: nosniff\r\n\
         connection: close\r\n\r\n{PLAIN_HTTP_ON_TLS_PORT}",
        PLAIN_HTTP_ON_TLS_PORT.len()
    );
    if let Err(err) = admitted.stream.write_all(response.as_bytes()).await {
        tracing::debug!(error = %err, "could not answer a plain HTTP request on the HTTPS port");
    }
    let _ = admitted.stream.shutdown().await;
}

/// How long a plain HTTP request on the HTTPS port may pause between its parts before it is
/// answered anyway.
const PLAIN_HTTP_DRAIN_WAIT: Duration = Duration::from_millis(200);

/// Errors of `accept` that concern one connection only; the next `accept` can succeed at once.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Pauses between accept attempts while the process is out of descriptors or buffers.
#[derive(Debug, Default)]
struct AcceptBackoff {
    /// The current pause; `None` while accepting works.
    pause: Option<Duration>,
}

impl AcceptBackoff {
    /// The pause before the next attempt. Logs when a run of errors starts, not at each error.
    fn failed(&mut self, err: &io::Error) -> Duration {
        let pause = match self.pause {
            None => {
                tracing::error!(
                    error = %err,
                    "cannot accept connections; retrying with growing pauses until it works again"
                );
                ACCEPT_BACKOFF_FIRST
            }
            Some(pause) => (pause * 2).min(ACCEPT_BACKOFF_MAX),
        };
        self.pause = Some(pause);
        pause
    }

    fn succeeded(&mut self) {
        if self.pause.take().is_some() {
            tracing::info!("accepting connections again");
        }
    }
}

/// Which cap a refused connection was over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerAddress,
    Total,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Self::PerAddress => "too many open connections from this address; try again shortly",
            Self::Total => "the server has too many open connections; try again shortly",
        }
    }

    /// The whole HTTP answer: a `503` with a JSON body, `Retry-After` and `Connection: close`.
    pub fn response(self) -> Vec<u8> {
        let body = serde_json::json!({ "error": self.message() }).to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\n\
             content-type: application/json\r\n\
             content-length: {}\r\n\
             retry-after: {OVER_CAP_RETRY_AFTER_SECS}\r\n\
             x-content-type-options: nosniff\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Answers a connection over a cap and closes it, without a task or a wait: the answer is a
/// few hundred bytes, which a fresh socket's send buffer always takes.
fn refuse(stream: TcpStream, refusal: Refusal) {
    let mut stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(error = %err, "could not answer a refused connection");
            return;
        }
    };
    // Non-blocking (tokio set it so): each call returns at once.
    let mut drained = 0;
    let mut scratch = [0_u8; 1024];
    while drained < REFUSAL_DRAIN_BYTES {
        match io::Read::read(&mut stream, &mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(read) => drained += read,
        }
    }
    if let Err(err) = io::Write::write_all(&mut stream, &refusal.response()) {
        tracing::debug!(error = %err, "could not answer a refused connection");
    }
}

/// Logs refusals without flooding: one line per [`REFUSAL_LOG_INTERVAL`], with a count of the
/// ones in between.
#[derive(Debug, Default)]
struct RefusalLog {
    last_line: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn record(&mut self, refusal: Refusal, remote: SocketAddr) {
        let now = Instant::now();
        if self
            .last_line
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            remote = %remote.ip(),
            cap = ?refusal,
            refused_since_last_line = self.unlogged,
            "connection over the cap refused"
        );
        self.last_line = Some(now);
        self.unlogged = 0;
    }
}

/// The caps on open connections: in total, and per client address.
#[derive(Debug)]
struct ConnCaps {
    total: Arc<Semaphore>,
    max_per_address: usize,
    /// Open connections per address; entries are removed at zero. A std mutex: nothing awaits
    /// under it.
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnCaps {
    fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(max_total.min(Semaphore::MAX_PERMITS))),
            max_per_address,
            per_address: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one connection from `ip`, or which cap is full.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let key = address_key(ip);
        let mut counts = self
            .per_address
            .lock()
            .expect("the per-address lock is never held across a panic");
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max_per_address {
            return Err(Refusal::PerAddress);
        }
        let Ok(permit) = Arc::clone(&self.total).try_acquire_owned() else {
            if *count == 0 {
                counts.remove(&key);
            }
            return Err(Refusal::Total);
        };
        *count += 1;
        Ok(Admission {
            caps: Arc::clone(self),
            key,
            _permit: permit,
        })
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self
            .per_address
            .lock()
            .expect("the per-address lock is never held across a panic");
        if let Some(count) = counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> usize {
        let counts = self.per_address.lock().expect("not poisoned");
        counts.get(&address_key(ip)).copied().unwrap_or(0)
    }
}

/// What one cap counts as one client: an IPv4 address (also when it arrives IPv4-mapped on an
/// IPv6 socket), or an IPv6 /64, which one host usually holds whole.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1_u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// One connection's place under the caps, given back when dropped.
#[derive(Debug)]
struct Admission {
    caps: Arc<ConnCaps>,
    key: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.caps.release(self.key);
    }
}

/// A socket and its place under the caps. hyper hands this I/O on to the WebSocket at the
/// upgrade, so the place is held until the socket closes.
#[derive(Debug)]
struct Admitted {
    stream: TcpStream,
    _admission: Admission,
}

impl AsyncRead for Admitted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_has_its_own_cap_and_places_come_back() {
        let caps = Arc::new(ConnCaps::new(10, 2));
        let a1 = caps.admit(ip("10.0.0.1")).unwrap();
        let _a2 = caps.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.1")).unwrap_err(), Refusal::PerAddress);
        // An IPv4-mapped IPv6 address is the same client.
        assert_eq!(
            caps.admit(ip("::ffff:10.0.0.1")).unwrap_err(),
            Refusal::PerAddress
        );
        let _b = caps.admit(ip("10.0.0.2")).unwrap();
        drop(a1);
        assert_eq!(caps.open_from(ip("10.0.0.1")), 1);
        let _a3 = caps.admit(ip("10.0.0.1")).unwrap();
    }

    #[test]
    fn the_total_cap_holds_across_addresses() {
        let caps = Arc::new(ConnCaps::new(2, 5));
        let a = caps.admit(ip("10.0.0.1")).unwrap();
        let _b = caps.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.3")).unwrap_err(), Refusal::Total);
        // A refused address leaves no entry behind.
        assert_eq!(caps.per_address.lock().unwrap().len(), 2);
        drop(a);
        let _c = caps.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(caps.open_from(ip("10.0.0.1")), 0);
        assert_eq!(caps.per_address.lock().unwrap().len(), 2);
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        let caps = Arc::new(ConnCaps::new(10, 1));
        let _first = caps.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            caps.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            Refusal::PerAddress
        );
        let _other = caps.admit(ip("2001:db8:1:3::1")).unwrap();
    }

    #[test]
    fn the_connection_cap_fits_under_the_open_file_limit() {
        assert_eq!(fitting_connection_cap(4096, None), 4096);
        assert_eq!(fitting_connection_cap(4096, Some(1024)), 1024 - FD_RESERVE);
        assert_eq!(fitting_connection_cap(100, Some(1024)), 100);
        assert_eq!(fitting_connection_cap(100, Some(10)), 1);
    }

    #[test]
    fn accept_errors_back_off_up_to_a_ceiling_and_reset() {
        let err = io::Error::from_raw_os_error(24); // EMFILE
        assert!(!is_connection_error(&err));
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<_> = (0..12).map(|_| backoff.failed(&err)).collect();
        assert_eq!(pauses[0], ACCEPT_BACKOFF_FIRST);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(*pauses.last().unwrap(), ACCEPT_BACKOFF_MAX);
        backoff.succeeded();
        assert_eq!(backoff.failed(&err), ACCEPT_BACKOFF_FIRST);
    }

    /// A self-signed certificate for `name`, as a resolver, and its DER to trust in a client.
    fn self_signed(
        name: &str,
    ) -> (
        Arc<dyn rustls::server::ResolvesServerCert>,
        rustls::pki_types::CertificateDer<'static>,
    ) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let der = cert.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            rustls::sign::CertifiedKey::from_der(vec![der.clone()], key, &provider).unwrap();
        (
            Arc::new(rustls::sign::SingleCertAndKey::from(certified)),
            der,
        )
    }

    /// A TLS client trusting `root` only and offering `alpn`.
    async fn tls_client(
        addr: SocketAddr,
        root: rustls::pki_types::CertificateDer<'static>,
        name: &'static str,
        alpn: &[u8],
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let tcp = TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::try_from(name).unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }

    #[tokio::test]
    async fn an_acme_validation_handshake_gets_the_challenge_certificate_and_no_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (default_resolver, default_der) = self_signed("board.example.org");
        let (challenge_resolver, challenge_der) = self_signed("challenge.example.org");
        let default = crate::tls::server_config(default_resolver).unwrap();
        let mut challenge = (*crate::tls::server_config(challenge_resolver).unwrap()).clone();
        challenge.alpn_protocols = vec![b"acme-tls/1".to_vec()];
        let tls = ServerTls::with_challenge(default, Arc::new(challenge));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let limits = HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 16,
            max_connections_per_address: 16,
        };
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let server = tokio::spawn(serve_with_tls(
            listener,
            router,
            limits,
            Some(tls),
            stop.clone(),
            tracker.clone(),
        ));

        // The validation handshake: the challenge certificate, then the connection closes
        // without serving a request.
        let mut validation =
            tls_client(addr, challenge_der, "challenge.example.org", b"acme-tls/1")
                .await
                .unwrap();
        assert_eq!(
            validation.get_ref().1.alpn_protocol(),
            Some(&b"acme-tls/1"[..])
        );
        let _ = validation
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = validation.read_to_end(&mut answer).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

        // An ordinary client: the default certificate and the routes.
        let mut client = tls_client(addr, default_der, "board.example.org", b"http/1.1")
            .await
            .unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");

        stop.cancel();
        server.await.unwrap();
        tracker.close();
        tracker.wait().await;
    }

    #[test]
    fn the_refusal_is_a_complete_json_answer() {
        let response = String::from_utf8(Refusal::Total.response()).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].as_str().unwrap().contains("too many"));
    }
}
