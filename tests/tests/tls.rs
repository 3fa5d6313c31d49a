//! HTTPS and WSS with `--tls-cert` / `--tls-key`, against the built binary.
//!
//! Each test makes its own CA and server certificates (for `localhost` and `127.0.0.1`) with
//! rcgen, starts `labboard` with them, and talks to it only through clients that trust that CA:
//! the Rust client over `wss://`, the JS client with the CA in `NODE_EXTRA_CA_CERTS`, and a
//! raw rustls connection for HTTPS requests and for reading the certificate served. SIGHUP
//! reloads are awaited through the server's own log lines, never through sleeps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::Context as _;
use labboard::config::TEST_ORGANIZER_TOKEN;
use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use labboard_tests::js::{ensure_installed, JsPeer, TEST_RETRY_MS};
use labboard_tests::{
    add_note, http, http_over, lab_from_created, labboard_bin, note, within, HttpResponse, Lab,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A test certificate authority that issues server certificates.
struct TestCa {
    pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A server certificate and its key, in PEM, and the certificate's DER (its fingerprint).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Labboard test CA");
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A fresh certificate for `localhost` and `127.0.0.1` with a fresh key.
    fn leaf(&self) -> Leaf {
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A rustls client configuration trusting this CA only.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("CA into the root store");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// The files a server is started with, in a temporary directory that also holds its data.
struct Files {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Files {
    fn new(ca: &TestCa, leaf: &Leaf) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = Self {
            cert: dir.path().join("server.crt"),
            key: dir.path().join("server.key"),
            ca: dir.path().join("ca.pem"),
            dir,
        };
        std::fs::write(&files.ca, &ca.pem).expect("write CA");
        files.install(leaf);
        files
    }

    /// Writes `leaf` over the server's certificate and key files.
    fn install(&self, leaf: &Leaf) {
        std::fs::write(&self.cert, &leaf.cert_pem).expect("write certificate");
        std::fs::write(&self.key, &leaf.key_pem).expect("write key");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// The binary serving HTTPS, with its log lines (stderr) readable by the test.
struct TlsServer {
    addr: SocketAddr,
    child: Child,
    log: mpsc::UnboundedReceiver<String>,
    tls: Arc<rustls::ClientConfig>,
}

impl TlsServer {
    async fn start(files: &Files, tls: Arc<rustls::ClientConfig>) -> Self {
        let bin = labboard_bin();
        assert!(bin.exists(), "{} is missing: build it first", bin.display());
        let mut child = Command::new(&bin)
            .env("LABBOARD_ADMIN_TOKEN", TEST_ORGANIZER_TOKEN)
            .env_remove("LABBOARD_ADMIN_TOKEN_FILE")
            .args(["--listen", "127.0.0.1:0", "--log", "labboard=info,warn"])
            .arg("--data-dir")
            .arg(files.data_dir())
            .arg("--tls-cert")
            .arg(&files.cert)
            .arg("--tls-key")
            .arg(&files.key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start labboard");
        let (tx, log) = mpsc::unbounded_channel();
        let stderr = child.stderr.take().expect("stderr");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[labboard] {line}");
                let _ = tx.send(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = within("the listening line", stdout.next_line())
            .await
            .expect("read stdout")
            .expect("labboard printed its address");
        let addr = first
            .strip_prefix("labboard listening on https://")
            .unwrap_or_else(|| panic!("not an https listening line: {first}"))
            .parse()
            .expect("an address");
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Self {
            addr,
            child,
            log,
            tls,
        }
    }

    /// A TLS connection to the server, verified against the test CA.
    async fn connect(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = within("connect", TcpStream::connect(self.addr))
            .await
            .expect("TCP connect");
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        let name = ServerName::try_from("localhost").expect("server name");
        within("TLS handshake", connector.connect(name, tcp))
            .await
            .expect("the handshake succeeds with a certificate the CA signed")
    }

    /// The certificate a new connection is served (DER), in a full handshake: a resumed TLS
    /// session would report the certificate of the session it resumes.
    async fn served_certificate(&self) -> Vec<u8> {
        let mut config = (*self.tls).clone();
        config.resumption = rustls::client::Resumption::disabled();
        let tcp = within("connect", TcpStream::connect(self.addr))
            .await
            .expect("TCP connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let stream = within(
            "TLS handshake",
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .expect("the handshake succeeds with a certificate the CA signed");
        let (_, connection) = stream.get_ref();
        connection.peer_certificates().expect("a certificate")[0].to_vec()
    }

    /// One HTTPS request.
    async fn https(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> HttpResponse {
        let stream = self.connect().await;
        http_over(
            stream,
            self.addr,
            method,
            path,
            auth,
            &[],
            body.map(str::as_bytes),
        )
        .await
    }

    async fn create_lab(&self, title: &str) -> Lab {
        let body = json!({ "title": title, "school": "Hillside", "grade": "2" }).to_string();
        let response = self
            .https("POST", "/api/labs", Some(TEST_ORGANIZER_TOKEN), Some(&body))
            .await;
        assert_eq!(response.status, 201, "create lab: {}", response.body);
        lab_from_created(&response.json())
    }

    async fn facilitate(&self, lab: &Lab) -> String {
        let body = json!({ "key": lab.facilitator_key }).to_string();
        let path = format!("/api/labs/{}/facilitate", lab.lab_id);
        let response = self.https("POST", &path, None, Some(&body)).await;
        assert_eq!(response.status, 200, "facilitate: {}", response.body);
        response.json()["token"].as_str().expect("token").to_owned()
    }

    fn wss_url(&self, token: &str) -> String {
        format!("wss://127.0.0.1:{}/sync?token={token}", self.addr.port())
    }

    /// A Rust client over `wss://`, trusting the test CA, attached to the lab's board.
    async fn rust_client(
        &self,
        lab: &Lab,
        peer: &str,
    ) -> (Client, labboard_protocol::client::DocHandle) {
        let token = self.facilitate(lab).await;
        let client = Client::connect_with_tls(
            &self.wss_url(&token),
            PeerId::from(peer),
            Arc::clone(&self.tls),
        )
        .await
        .expect("the Rust client connects over wss");
        let board = within("find the board", client.find(lab.doc_id))
            .await
            .expect("the board is there");
        (client, board)
    }

    /// SIGHUP, then the log line that says how the reload went.
    async fn hang_up(&mut self) -> String {
        let pid = self.child.id().expect("labboard runs");
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -HUP {pid}");
        let log = &mut self.log;
        within("the reload's log line", async {
            loop {
                let line = log.recv().await.expect("labboard still logs");
                if line.contains("TLS certificate") {
                    return line;
                }
            }
        })
        .await
    }
}

#[tokio::test]
async fn a_rust_and_a_js_client_sync_a_note_over_wss() {
    ensure_installed().expect("JS test dependencies (npm ci in tests/js)");
    let ca = TestCa::new();
    let files = Files::new(&ca, &ca.leaf());
    let server = TlsServer::start(&files, ca.client_config()).await;

    let health = server.https("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["status"], "ok");

    let lab = server.create_lab("Making ten").await;
    let https_base = format!("https://127.0.0.1:{}/", server.addr.port());
    assert!(
        lab.join_url.starts_with(&https_base),
        "join links use https when TLS is on: {}",
        lab.join_url
    );

    // Rust writes a note over wss.
    let (_rust, board) = server.rust_client(&lab, "rust-coach").await;
    add_note(&board, "n1", "counted by tens");
    within("the note reaches the server", board.wait_synced())
        .await
        .expect("synced");

    // The JS client, trusting the CA through NODE_EXTRA_CA_CERTS, sees it and answers.
    let token = server.facilitate(&lab).await;
    let mut js = JsPeer::spawn_with_env(
        &server.wss_url(&token),
        "js-coach",
        TEST_RETRY_MS,
        &[("NODE_EXTRA_CA_CERTS", files.ca.as_os_str())],
    )
    .await
    .expect("node peer starts");
    js.wait_connected()
        .await
        .expect("the JS client joins over wss");
    js.wait_for(&lab.doc_url, "notes", json!({ "n1": "counted by tens" }))
        .await
        .expect("the JS client sees the Rust note");
    js.set_in(&lab.doc_url, &["notes"], "n2", json!("made ten with 7 + 3"))
        .await
        .expect("the JS client writes a note");
    within(
        "the Rust client sees the JS note",
        board.wait_until(|doc| note(doc, "n2").as_deref() == Some("made ten with 7 + 3")),
    )
    .await
    .expect("the JS note arrives");
}

#[tokio::test]
async fn plain_http_and_broken_handshakes_on_the_tls_port_harm_nothing() {
    let ca = TestCa::new();
    let files = Files::new(&ca, &ca.leaf());
    let server = TlsServer::start(&files, ca.client_config()).await;

    // A browser typed http:// : a short plain answer naming https.
    let plain = http(server.addr, "GET", "/healthz", None, None).await;
    assert_eq!(plain.status, 400, "{}", plain.body);
    assert!(plain.body.contains("https://"), "{}", plain.body);

    // A TLS record that is not a valid ClientHello: the connection is closed.
    let mut broken = TcpStream::connect(server.addr).await.expect("connect");
    broken
        .write_all(b"\x16\x03\x01\x00\x05garbage-that-is-no-client-hello")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let _ = within(
        "the broken handshake is closed",
        broken.read_to_end(&mut rest),
    )
    .await;

    // A client that trusts nothing the server shows fails its own handshake; the server goes on.
    let untrusting = TestCa::new().client_config();
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let refused = tokio_rustls::TlsConnector::from(untrusting)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(
        refused.is_err(),
        "a certificate from another CA is not trusted"
    );

    let health = server.https("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
}

#[tokio::test]
async fn sighup_serves_a_new_certificate_to_new_connections_and_keeps_open_ones() {
    let ca = TestCa::new();
    let first = ca.leaf();
    let files = Files::new(&ca, &first);
    let mut server = TlsServer::start(&files, ca.client_config()).await;
    assert_eq!(server.served_certificate().await, first.der);

    let lab = server.create_lab("Arrays").await;
    let (before, before_board) = server.rust_client(&lab, "open-before").await;

    // A new certificate and key, then SIGHUP.
    let second = ca.leaf();
    assert_ne!(second.der, first.der);
    files.install(&second);
    let line = server.hang_up().await;
    assert!(line.contains("reloaded"), "{line}");
    assert_eq!(
        server.served_certificate().await,
        second.der,
        "a new connection gets the new certificate"
    );

    // The WebSocket opened before the reload still syncs, both ways.
    add_note(&before_board, "before", "still connected");
    within("the old socket still syncs", before_board.wait_synced())
        .await
        .expect("synced over the old socket");
    let (_after, after_board) = server.rust_client(&lab, "open-after").await;
    within(
        "the new client sees the old socket's note",
        after_board.wait_until(|doc| note(doc, "before").is_some()),
    )
    .await
    .expect("note arrives");
    add_note(&after_board, "after", "new certificate");
    within(
        "the old socket receives the new note",
        before_board.wait_until(|doc| note(doc, "after").is_some()),
    )
    .await
    .expect("note arrives over the old socket");
    assert!(
        futures_util::FutureExt::now_or_never(before.closed()).is_none(),
        "the socket opened before the reload is still open"
    );

    // A broken certificate file: the reload fails, the current certificate stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").expect("write");
    let line = server.hang_up().await;
    assert!(line.contains("not reloaded"), "{line}");
    assert!(
        line.contains(&files.cert.display().to_string()),
        "the error names the file: {line}"
    );
    assert_eq!(server.served_certificate().await, second.der);

    // A key that does not fit the certificate: the same.
    let third = ca.leaf();
    std::fs::write(&files.cert, &third.cert_pem).expect("write");
    let line = server.hang_up().await;
    assert!(line.contains("not reloaded"), "{line}");
    assert_eq!(server.served_certificate().await, second.der);
}

/// Runs the binary with `args` and returns its exit success and stderr, for start-up errors.
async fn start_failure(data_dir: &Path, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = Command::new(labboard_bin())
        .env("LABBOARD_ADMIN_TOKEN", TEST_ORGANIZER_TOKEN)
        .env_remove("LABBOARD_TLS_CERT")
        .env_remove("LABBOARD_TLS_KEY")
        .env_remove("LABBOARD_ACME_DOMAIN")
        .env_remove("LABBOARD_ACME_CONTACT")
        .env_remove("LABBOARD_ACME_STAGING")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = within("labboard exits", output)
        .await
        .context("run labboard")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_tls_files_stop_the_start_with_the_file_named() {
    let ca = TestCa::new();
    let files = Files::new(&ca, &ca.leaf());
    let data = files.data_dir();
    let flag = |text: &'static str| std::ffi::OsStr::new(text);

    let (ok, stderr) = start_failure(&data, &[flag("--tls-cert"), files.cert.as_os_str()]).await;
    assert!(!ok && stderr.contains("--tls-key"), "{stderr}");

    let missing = files.dir.path().join("nowhere.crt");
    let (ok, stderr) = start_failure(
        &data,
        &[
            flag("--tls-cert"),
            missing.as_os_str(),
            flag("--tls-key"),
            files.key.as_os_str(),
        ],
    )
    .await;
    assert!(!ok && stderr.contains("nowhere.crt"), "{stderr}");

    // The certificate given as the key.
    let (ok, stderr) = start_failure(
        &data,
        &[
            flag("--tls-cert"),
            files.cert.as_os_str(),
            flag("--tls-key"),
            files.cert.as_os_str(),
        ],
    )
    .await;
    assert!(
        !ok && stderr.contains("server.crt") && stderr.contains("private key"),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing was created before the check");
}

#[tokio::test]
async fn bad_acme_flags_stop_the_start_with_a_clear_message() {
    let data = tempfile::tempdir().expect("temp dir");
    let data = data.path().join("data");
    let flag = |text: &'static str| std::ffi::OsStr::new(text);

    let (ok, stderr) = start_failure(&data, &[flag("--acme-domain"), flag("192.168.1.20")]).await;
    assert!(!ok && stderr.contains("IP address"), "{stderr}");

    let (ok, stderr) = start_failure(
        &data,
        &[
            flag("--acme-domain"),
            flag("labboard.example.org"),
            flag("--acme-contact"),
            flag("it@example.org"),
        ],
    )
    .await;
    assert!(!ok && stderr.contains("mailto:"), "{stderr}");

    let (ok, stderr) = start_failure(
        &data,
        &[
            flag("--acme-domain"),
            flag("labboard.example.org"),
            flag("--tls-cert"),
            flag("c.pem"),
            flag("--tls-key"),
            flag("k.pem"),
        ],
    )
    .await;
    assert!(!ok && stderr.contains("--tls-cert"), "{stderr}");
    assert!(!data.exists(), "nothing was created");
}
