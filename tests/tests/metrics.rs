//! Operations endpoints of the built `labboard` binary: `/metrics` parses as Prometheus
//! (OpenMetrics) text, its counters move as a lab runs, it names no lab, person or secret, and it
//! needs the organizer token unless `--metrics-listen` serves it elsewhere; `/readyz` answers 503
//! with the reason while the database cannot be written, and 200 again once it can.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use labboard_protocol::PeerId;
use labboard_tests::{
    add_note, create_lab, facilitate, http, join_lab, labboard_bin, sync_url, within, HttpResponse,
    TEST_ORGANIZER_TOKEN,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary, run with `args`, with the addresses it printed.
struct Server {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    _child: Child,
}

impl Server {
    async fn spawn(data_dir: &Path, args: &[&str]) -> Self {
        let expect_metrics = args.contains(&"--metrics-listen");
        let mut child = Command::new(labboard_bin())
            .env("LABBOARD_ADMIN_TOKEN", TEST_ORGANIZER_TOKEN)
            .env_remove("LABBOARD_ADMIN_TOKEN_FILE")
            .env_remove("LABBOARD_METRICS_LISTEN")
            .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the labboard binary (build it with `cargo build -p labboard`)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (addr, metrics_addr) = within("the server prints its addresses", async {
            let mut addr = None;
            let mut metrics_addr = None;
            while addr.is_none() || (expect_metrics && metrics_addr.is_none()) {
                let line = lines
                    .next_line()
                    .await
                    .expect("read stdout")
                    .expect("the server exited before printing its addresses");
                if let Some(rest) = line.strip_prefix("labboard listening on http://") {
                    addr = Some(rest.trim().parse::<SocketAddr>().expect("address"));
                }
                if let Some(rest) = line.strip_prefix("labboard metrics on http://") {
                    let rest = rest.trim().strip_suffix("/metrics").expect("/metrics");
                    metrics_addr = Some(rest.parse::<SocketAddr>().expect("metrics address"));
                }
            }
            (addr.expect("address"), metrics_addr)
        })
        .await;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            addr,
            metrics_addr,
            _child: child,
        }
    }
}

/// One sample of a scrape: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the OpenMetrics / Prometheus text format strictly enough to catch a malformed
/// exposition: metadata lines of known kinds, valid metric and label names, quoted label values
/// with their escapes, numeric values, and the closing `# EOF`.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    fn is_name(name: &str, colons: bool) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
    }
    let mut samples = Vec::new();
    let mut saw_eof = false;
    for line in text.lines() {
        if saw_eof {
            return Err(format!("`{line}` after # EOF"));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let kind = parts.next().unwrap_or_default();
            let name = parts.next().unwrap_or_default();
            if !matches!(kind, "HELP" | "TYPE" | "UNIT") || !is_name(name, true) {
                return Err(format!("bad metadata line `{line}`"));
            }
            if kind == "TYPE"
                && !matches!(
                    parts.next(),
                    Some("counter" | "gauge" | "histogram" | "summary" | "info" | "unknown")
                )
            {
                return Err(format!("bad type in `{line}`"));
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| format!("no value in `{line}`"))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(format!("bad metric name in `{line}`"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices();
            let mut key = String::new();
            loop {
                let (i, c) = chars
                    .next()
                    .ok_or_else(|| format!("unclosed labels in `{line}`"))?;
                match c {
                    '}' if key.is_empty() => {
                        rest = &inner[i + 1..];
                        break;
                    }
                    '=' => {
                        if !is_name(&key, false) {
                            return Err(format!("bad label name `{key}` in `{line}`"));
                        }
                        if chars.next().map(|(_, c)| c) != Some('"') {
                            return Err(format!("unquoted label value in `{line}`"));
                        }
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|(_, c)| c) {
                                Some('"') => break,
                                Some('\\') => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(c @ ('\\' | '"')) => value.push(c),
                                    _ => return Err(format!("bad escape in `{line}`")),
                                },
                                Some(c) => value.push(c),
                                None => return Err(format!("unclosed label value in `{line}`")),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                        match chars.next().map(|(_, c)| c) {
                            Some(',') => {}
                            Some('}') => {
                                let (i, _) = chars
                                    .next()
                                    .ok_or_else(|| format!("no value in `{line}`"))?;
                                rest = &inner[i..];
                                break;
                            }
                            _ => return Err(format!("bad label list in `{line}`")),
                        }
                    }
                    c => key.push(c),
                }
            }
        }
        let value_text = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("no space before the value in `{line}`"))?
            .split(' ')
            .next()
            .unwrap_or_default();
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            text => text
                .parse::<f64>()
                .map_err(|err| format!("bad value in `{line}`: {err}"))?,
        };
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    if !saw_eof {
        return Err("no # EOF at the end".into());
    }
    Ok(samples)
}

/// A scrape, parsed.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn from(response: &HttpResponse) -> Self {
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            response
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/openmetrics-text")),
            "{:?}",
            response.headers
        );
        let samples = parse_exposition(&response.body)
            .unwrap_or_else(|err| panic!("{err}\n{}", response.body));
        Self {
            text: response.body.clone(),
            samples,
        }
    }

    /// The value of `name` with exactly `labels`; 0 when the series does not exist yet.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == labels)
            .map_or(0.0, |s| s.value)
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

async fn scrape(addr: SocketAddr) -> Scrape {
    Scrape::from(&http(addr, "GET", "/metrics", Some(TEST_ORGANIZER_TOKEN), None).await)
}

/// Every series the README lists but the HTTP ones is there from the start; those have a series
/// per route and status, made by the first request.
const SERIES: [&str; 15] = [
    "labboard_connections_open",
    "labboard_documents_loaded",
    "labboard_labs_active",
    "labboard_changes_applied_total",
    "labboard_sync_messages_received_total",
    "labboard_sync_received_bytes_total",
    "labboard_sync_messages_sent_total",
    "labboard_sync_sent_bytes_total",
    "labboard_outbox_dropped_messages_total",
    "labboard_storage_commit_duration_seconds_count",
    "labboard_storage_commit_duration_seconds_bucket",
    "labboard_storage_commit_batch_ops_sum",
    "labboard_disconnects_total",
    "labboard_rate_limited_total",
    "labboard_errors_total",
];

#[tokio::test]
async fn metrics_count_a_lab_and_name_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(dir.path(), &[]).await;
    let addr = server.addr;

    let anonymous = http(addr, "GET", "/metrics", None, None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let wrong = http(addr, "GET", "/metrics", Some("not-the-token"), None).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(!wrong.body.contains("labboard_"), "{}", wrong.body);

    let before = scrape(addr).await;
    for series in SERIES {
        assert!(before.has(series), "{series} missing:\n{}", before.text);
    }
    assert_eq!(before.value("labboard_connections_open", &[]), 0.0);
    assert_eq!(before.value("labboard_labs_active", &[]), 0.0);

    let still_anonymous = http(addr, "GET", "/metrics", None, None).await;
    assert_eq!(still_anonymous.status, 401, "{}", still_anonymous.body);

    let title = "Zanzibar fractions lab";
    let member = "Quillon Marchetti";
    let peer = "peer-wolverine-57";
    let lab = create_lab(addr, title).await;
    let observer_token = join_lab(addr, &lab.join_code, member).await;
    let facilitator_token = facilitate(addr, &lab).await;
    let wrong_code = serde_json::json!({ "code": "ZZZZ-ZZZZ", "name": member }).to_string();
    let refused = http(addr, "POST", "/api/join", None, Some(&wrong_code)).await;
    assert_eq!(refused.status, 404, "{}", refused.body);

    let client = within(
        "connect",
        labboard_protocol::client::Client::connect(
            &sync_url(addr, &observer_token),
            PeerId::from(peer),
        ),
    )
    .await
    .expect("the observer's token opens a socket");
    let board = within("find the board", client.find(lab.doc_id))
        .await
        .expect("the board is there");
    for i in 0..3 {
        add_note(
            &board,
            &format!("note-{i}"),
            &format!("{member} counts by tens {i}"),
        );
        within("the note is stored", board.wait_synced())
            .await
            .expect("the connection stays open");
    }

    let during = scrape(addr).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        during.value(name, labels) - before.value(name, labels)
    };
    assert!(
        grew("labboard_changes_applied_total", &[]) >= 3.0,
        "{}",
        during.text
    );
    assert!(grew("labboard_sync_messages_received_total", &[]) >= 4.0);
    assert!(grew("labboard_sync_messages_sent_total", &[]) >= 4.0);
    assert!(grew("labboard_sync_received_bytes_total", &[]) > 0.0);
    assert!(grew("labboard_sync_sent_bytes_total", &[]) > 0.0);
    assert!(grew("labboard_storage_commit_duration_seconds_count", &[]) >= 3.0);
    assert!(grew("labboard_storage_commit_batch_ops_sum", &[]) >= 3.0);
    assert_eq!(during.value("labboard_connections_open", &[]), 1.0);
    assert_eq!(during.value("labboard_labs_active", &[]), 1.0);
    assert!(during.value("labboard_documents_loaded", &[]) >= 1.0);
    for (route, status) in [
        ("/api/labs", "201"),
        ("/api/join", "200"),
        ("/api/join", "404"),
        ("/api/labs/{lab_id}/facilitate", "200"),
        ("/sync", "101"),
        ("/metrics", "401"),
    ] {
        let labels = [("route", route), ("status", status)];
        assert!(
            grew("labboard_http_requests_total", &labels) >= 1.0,
            "{route} {status}:\n{}",
            during.text
        );
    }
    assert!(
        during.value(
            "labboard_http_request_duration_seconds_count",
            &[("route", "/api/labs")]
        ) >= 1.0
    );

    client.close().await;
    let after = within("the closed connection is counted", async {
        loop {
            let now = scrape(addr).await;
            if now.value("labboard_connections_open", &[]) == 0.0 {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        after.value("labboard_disconnects_total", &[("reason", "client_left")])
            > before.value("labboard_disconnects_total", &[("reason", "client_left")]),
        "{}",
        after.text
    );
    assert_eq!(after.value("labboard_labs_active", &[]), 0.0);

    // Wrong join codes from this address until the limiter refuses one.
    let limited = within("the join limiter refuses", async {
        loop {
            let response = http(addr, "POST", "/api/join", None, Some(&wrong_code)).await;
            if response.status == 429 {
                return scrape(addr).await;
            }
            assert_eq!(response.status, 404, "{}", response.body);
        }
    })
    .await;
    let limited_join = [("limiter", "join")];
    assert_eq!(
        before.value("labboard_rate_limited_total", &limited_join),
        0.0
    );
    assert_eq!(
        limited.value("labboard_rate_limited_total", &limited_join),
        1.0,
        "{}",
        limited.text
    );
    assert_eq!(
        limited.value(
            "labboard_http_requests_total",
            &[("route", "/api/join"), ("status", "429")]
        ),
        1.0
    );

    let doc_id = lab.doc_id.to_string();
    for secret in [
        title,
        member,
        peer,
        lab.lab_id.as_str(),
        doc_id.as_str(),
        lab.doc_url.as_str(),
        lab.join_code.as_str(),
        lab.facilitator_key.as_str(),
        observer_token.as_str(),
        facilitator_token.as_str(),
        TEST_ORGANIZER_TOKEN,
        "Hillside",
    ] {
        for scrape in [&during, &after, &limited] {
            assert!(
                !scrape.text.contains(secret),
                "`{secret}` appears in /metrics:\n{}",
                scrape.text
            );
        }
    }
}

#[tokio::test]
async fn metrics_listen_serves_them_without_a_token_and_only_there() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(dir.path(), &["--metrics-listen", "127.0.0.1:0"]).await;
    let metrics_addr = server.metrics_addr.expect("the metrics address is printed");
    assert_ne!(metrics_addr, server.addr);

    let open = Scrape::from(&http(metrics_addr, "GET", "/metrics", None, None).await);
    for series in SERIES {
        assert!(open.has(series), "{series} missing:\n{}", open.text);
    }
    let ready = http(metrics_addr, "GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    // The main address no longer serves them, with or without the token.
    let main = http(
        server.addr,
        "GET",
        "/metrics",
        Some(TEST_ORGANIZER_TOKEN),
        None,
    )
    .await;
    assert_eq!(main.status, 404, "{}", main.body);
    assert!(!main.body.contains("labboard_"), "{}", main.body);
}

/// The database and its companions, made unwritable for as long as this lives, even for root.
struct Unwritable {
    files: Vec<PathBuf>,
    how: Protection,
}

#[derive(Clone, Copy)]
enum Protection {
    /// `chattr +i`: not even root may write (needs root, or CAP_LINUX_IMMUTABLE).
    Immutable,
    /// Owner-read-only mode: stops anyone but root.
    ReadOnlyMode,
}

fn chattr(flag: &str, files: &[PathBuf]) -> Result<(), String> {
    let out = std::process::Command::new("chattr")
        .arg(flag)
        .args(files)
        .output()
        .map_err(|err| format!("running chattr: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn set_mode(files: &[PathBuf], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    for file in files {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

impl Unwritable {
    /// Protects `files`, or says why no means works here.
    fn protect(files: Vec<PathBuf>) -> Result<Self, String> {
        match chattr("+i", &files) {
            Ok(()) => Ok(Self {
                files,
                how: Protection::Immutable,
            }),
            Err(why) if rustix::process::geteuid().is_root() => Err(format!(
                "chattr +i failed ({why}) and a read-only mode does not stop root"
            )),
            Err(_) => {
                set_mode(&files, 0o400);
                Ok(Self {
                    files,
                    how: Protection::ReadOnlyMode,
                })
            }
        }
    }

    fn lift(&self) {
        match self.how {
            Protection::Immutable => chattr("-i", &self.files).expect("chattr -i"),
            Protection::ReadOnlyMode => set_mode(&self.files, 0o600),
        }
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        // Whatever the test did, the temporary directory must stay removable.
        match self.how {
            Protection::Immutable => drop(chattr("-i", &self.files)),
            Protection::ReadOnlyMode => set_mode(&self.files, 0o600),
        }
    }
}

#[tokio::test]
async fn readyz_is_503_with_the_reason_while_storage_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(dir.path(), &[]).await;
    let addr = server.addr;

    let ready = http(addr, "GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body.trim(), "ready");

    let db = dir.path().join("labboard.db");
    let files: Vec<PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .filter(|file| file.exists())
        .collect();
    assert!(files.contains(&db), "the database file exists");
    let guard = match Unwritable::protect(files) {
        Ok(guard) => guard,
        Err(why) => {
            println!("skipped: no means to make the database unwritable here: {why}");
            return;
        }
    };

    let not_ready = http(addr, "GET", "/readyz", None, None).await;
    assert_eq!(not_ready.status, 503, "{}", not_ready.body);
    assert!(
        not_ready.body.contains("storage cannot write"),
        "{}",
        not_ready.body
    );
    if matches!(guard.how, Protection::Immutable) {
        assert!(
            not_ready.body.contains("readonly database"),
            "{}",
            not_ready.body
        );
    }
    // Alive all the same: `/healthz` does not look at storage.
    let alive = http(addr, "GET", "/healthz", None, None).await;
    assert_eq!(alive.status, 200, "{}", alive.body);

    guard.lift();
    let again = http(addr, "GET", "/readyz", None, None).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body.trim(), "ready");
    assert_eq!(again.header("x-content-type-options"), Some("nosniff"));

    let counted = scrape(addr).await;
    for (status, at_least) in [("200", 2.0), ("503", 1.0)] {
        assert!(
            counted.value(
                "labboard_http_requests_total",
                &[("route", "/readyz"), ("status", status)]
            ) >= at_least,
            "{}",
            counted.text
        );
    }
}

#[tokio::test]
async fn a_metrics_address_already_taken_stops_the_start_with_words() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = within(
        "the server gives up",
        Command::new(labboard_bin())
            .env("LABBOARD_ADMIN_TOKEN", TEST_ORGANIZER_TOKEN)
            .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
            .arg(dir.path())
            .args(["--metrics-listen", &taken_addr])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("run the labboard binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("listening for metrics on {taken_addr}")),
        "{stderr}"
    );
}
