//! Logs and secrets, against the built binary: `--log-format json` writes one JSON object per
//! line with an access line per request; a whole lab run at `debug` leaves no token, key or
//! join code in the output but the one first-start link; the link comes on the first start
//! only and `labboard organizer-url` prints it again; forwarding headers move the rate-limit
//! bucket only from a `--trusted-proxy`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};
use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use labboard_tests::{
    add_note, http, http_with_headers, join_lab, lab_from_created, labboard_bin, sync_url, within,
    Lab,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The binary with its standard output and error captured whole.
struct Logged {
    addr: SocketAddr,
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

/// What a stopped [`Logged`] wrote.
struct Output {
    stdout: String,
    stderr: String,
}

impl Logged {
    /// Starts the binary on `data_dir` with `args`; the organizer token is `organizer` from the
    /// environment, or the one the server generates.
    async fn start(data_dir: &Path, organizer: Option<&str>, args: &[&str]) -> Self {
        let mut command = Command::new(labboard_bin());
        clear_labboard_env(&mut command);
        if let Some(token) = organizer {
            command.env("LABBOARD_ADMIN_TOKEN", token);
        }
        let mut child = command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the labboard binary starts (build it with `cargo build -p labboard`)");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = within("the listening line", lines.next_line())
            .await
            .expect("stdout readable")
            .expect("labboard printed its address");
        let addr = first
            .strip_prefix("labboard listening on http://")
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        // The facilitators' line comes once the organizer token is read or written.
        let mut seen = format!("{first}\n");
        loop {
            let line = within("the facilitators' line", lines.next_line())
                .await
                .expect("stdout readable")
                .unwrap_or_else(|| panic!("labboard stopped after printing {seen}"));
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("facilitators create labs at: ") {
                break;
            }
        }
        let stdout = tokio::spawn(async move {
            let mut text = seen;
            while let Ok(Some(line)) = lines.next_line().await {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        // Serving (and so past installing its signal handlers) once it answers.
        let health = http(addr, "GET", "/healthz", None, None).await;
        assert_eq!(health.status, 200, "{}", health.body);
        Self {
            addr,
            child,
            stdout,
            stderr,
        }
    }

    /// SIGTERM, a clean exit, and everything it wrote.
    async fn stop(mut self) -> Output {
        let pid = self.child.id().expect("still running");
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await
            .expect("kill runs");
        assert!(killed.success());
        let status = within("a clean exit", self.child.wait()).await.unwrap();
        assert!(status.success(), "exit status {status}");
        Output {
            stdout: within("stdout closes", self.stdout).await.unwrap(),
            stderr: within("stderr closes", self.stderr).await.unwrap(),
        }
    }
}

/// Removes every `LABBOARD_*` variable this test process may have, so the flags decide.
fn clear_labboard_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LABBOARD_") {
            command.env_remove(name);
        }
    }
}

async fn create_lab(addr: SocketAddr, organizer: &str) -> Lab {
    let body = r#"{"title":"Making ten","school":"Hillside","grade":"2"}"#;
    let response = http(addr, "POST", "/api/labs", Some(organizer), Some(body)).await;
    assert_eq!(response.status, 201, "create lab: {}", response.body);
    lab_from_created(&response.json())
}

async fn join_with(addr: SocketAddr, code: &str, headers: &[(&str, &str)]) -> u16 {
    let body = serde_json::json!({ "code": code, "name": "Ana" }).to_string();
    http_with_headers(
        addr,
        "POST",
        "/api/join",
        None,
        headers,
        Some(body.as_bytes()),
    )
    .await
    .status
}

/// Whether `needle` occurs in `text` between characters that are not letters or digits: a
/// six-character join code may occur by chance inside a longer word or number.
fn contains_word(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// The secrets of one lab run, by name.
struct Secrets(Vec<(&'static str, String)>);

impl Secrets {
    /// The names of the secrets `text` holds.
    fn found_in(&self, text: &str) -> Vec<&'static str> {
        self.0
            .iter()
            .filter(|(_, secret)| contains_word(text, secret))
            .map(|(name, _)| *name)
            .collect()
    }
}

/// A whole small lab against a fresh server whose organizer token is generated: create, a
/// wrong and a right join, the join page, a facilitator sign-in, notes synced over a
/// WebSocket, a join code rotation, an export. Returns what the server wrote and its secrets.
async fn lab_run(format: &str) -> (Output, Secrets, Lab) {
    let dir = tempfile::tempdir().unwrap();
    let server = Logged::start(
        dir.path(),
        None,
        &["--log", "debug", "--log-format", format],
    )
    .await;
    let organizer = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let organizer = organizer.trim().to_owned();
    let addr = server.addr;

    let lab = create_lab(addr, &organizer).await;
    assert_eq!(join_with(addr, "ZZZZZZ", &[]).await, 404);
    // A code sent as a number: serde's error quotes it, to the client only.
    let numeric = r#"{"code": 987654321, "name": "Ana"}"#;
    let refused = http(addr, "POST", "/api/join", None, Some(numeric)).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("987654321"), "{}", refused.body);
    let observer = join_lab(addr, &lab.join_code, "Ana").await;
    // The join page (its status depends on whether the web client is built in).
    http(addr, "GET", &format!("/j/{}", lab.join_code), None, None).await;
    let body = serde_json::json!({ "key": lab.facilitator_key, "deviceKey": "device-fac" });
    let facilitate_path = format!("/api/labs/{}/facilitate", lab.lab_id);
    let signed_in = http(
        addr,
        "POST",
        &facilitate_path,
        None,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let facilitator = signed_in.json()["token"].as_str().unwrap().to_owned();
    let no_upgrade = http(addr, "GET", &format!("/sync?token={observer}"), None, None).await;
    assert_ne!(no_upgrade.status, 101);

    let client = within(
        "connect",
        Client::connect(&sync_url(addr, &observer), PeerId::from("phone-ana")),
    )
    .await
    .unwrap();
    let board = within("find the board", client.find(lab.doc_id))
        .await
        .unwrap();
    add_note(&board, "n1", "ten frames filled");
    within("the note is stored", board.wait_synced())
        .await
        .unwrap();

    let rotate = format!("/api/labs/{}/join-code", lab.lab_id);
    let rotated = http(addr, "POST", &rotate, Some(&facilitator), None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_code = rotated.json()["joinCode"].as_str().unwrap().to_owned();
    let export = format!("/api/labs/{}/export?format=json", lab.lab_id);
    let exported = http(addr, "GET", &export, Some(&facilitator), None).await;
    assert_eq!(exported.status, 200, "{}", exported.body);
    drop(board);
    drop(client);

    let output = server.stop().await;
    let secrets = Secrets(vec![
        ("organizer token", organizer),
        ("join code", lab.join_code.clone()),
        ("rotated join code", new_code),
        ("facilitator key", lab.facilitator_key.clone()),
        (
            "facilitator key without dashes",
            lab.facilitator_key.replace('-', ""),
        ),
        ("observer token", observer),
        ("a code sent as a number", "987654321".to_owned()),
        ("facilitator token", facilitator),
    ]);
    (output, secrets, lab)
}

/// Only the first-start link on stdout holds a secret, and it holds the organizer token.
fn assert_stdout_holds_only_the_link(output: &Output, secrets: &Secrets) {
    let mut holding = output
        .stdout
        .lines()
        .filter(|line| !secrets.found_in(line).is_empty());
    let link = holding.next().expect("the first start prints the link");
    assert!(
        link.starts_with("facilitators create labs at: ") && link.contains("/new#organizer="),
        "{link}"
    );
    assert_eq!(secrets.found_in(link), ["organizer token"], "{link}");
    assert_eq!(holding.next(), None, "stdout: {}", output.stdout);
}

#[tokio::test]
async fn json_logs_parse_and_a_lab_run_leaves_no_secret() {
    let (output, secrets, lab) = lab_run("json").await;
    assert_stdout_holds_only_the_link(&output, &secrets);
    assert!(
        secrets.found_in(&output.stderr).is_empty(),
        "{:?} in the log",
        secrets.found_in(&output.stderr)
    );

    let mut access = Vec::new();
    let mut debug_lines = 0;
    for line in output.stderr.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        assert!(event.is_object(), "{line}");
        debug_lines += usize::from(event["level"] == "DEBUG");
        if event["target"] == "labboard::access" {
            assert_eq!(event["level"], "INFO", "{line}");
            assert!(event["latency_ms"].as_f64().is_some(), "{line}");
            assert_eq!(event["peer"], "127.0.0.1", "{line}");
            assert!(!line.contains(&lab.lab_id), "a lab id in {line}");
            access.push((
                event["method"].as_str().unwrap().to_owned(),
                event["route"].as_str().unwrap().to_owned(),
                event["status"].as_u64().unwrap(),
            ));
        }
    }
    assert!(debug_lines > 0, "the run logged at debug");
    for expected in [
        ("POST", "/api/labs", 201),
        ("POST", "/api/join", 404),
        ("POST", "/api/join", 200),
        ("POST", "/api/labs/{lab_id}/facilitate", 200),
        ("GET", "/sync", 101),
        ("POST", "/api/labs/{lab_id}/join-code", 200),
        ("GET", "/api/labs/{lab_id}/export", 200),
    ] {
        let found = access
            .iter()
            .filter(|(method, route, status)| {
                (method.as_str(), route.as_str(), *status) == expected
            })
            .count();
        assert_eq!(found, 1, "{expected:?} in {access:?}");
    }
    assert!(
        access
            .iter()
            .any(|(method, route, _)| method == "GET" && route == "/j/{code}"),
        "{access:?}"
    );
}

#[tokio::test]
async fn text_logs_of_a_lab_run_leave_no_secret() {
    let (output, secrets, lab) = lab_run("text").await;
    assert_stdout_holds_only_the_link(&output, &secrets);
    assert!(
        secrets.found_in(&output.stderr).is_empty(),
        "{:?} in the log",
        secrets.found_in(&output.stderr)
    );
    let access: Vec<&str> = output
        .stderr
        .lines()
        .filter(|line| line.contains("labboard::access"))
        .collect();
    assert!(
        access.iter().any(|line| line.contains("route=/sync")
            && line.contains("status=101")
            && line.contains("latency_ms=")
            && line.contains("peer=127.0.0.1")),
        "{access:#?}"
    );
    assert!(access.iter().all(|line| !line.contains(&lab.lab_id)));
}

#[tokio::test]
async fn the_link_comes_on_the_first_start_only_and_organizer_url_prints_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let public = ["--public-url", "http://lab.example:8080/"];
    let first = Logged::start(dir.path(), None, &public).await.stop().await;
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let link = format!("http://lab.example:8080/new#organizer={}", token.trim());
    assert!(
        first
            .stdout
            .lines()
            .any(|line| line == format!("facilitators create labs at: {link}")),
        "{}",
        first.stdout
    );

    let second = Logged::start(dir.path(), None, &public).await.stop().await;
    assert!(!second.stdout.contains(token.trim()), "{}", second.stdout);
    assert!(!second.stderr.contains(token.trim()), "{}", second.stderr);
    assert!(
        second.stdout.contains("labboard organizer-url"),
        "{}",
        second.stdout
    );

    let mut command = Command::new(labboard_bin());
    clear_labboard_env(&mut command);
    let printed = command
        .arg("organizer-url")
        .arg("--data-dir")
        .arg(dir.path())
        .args(public)
        .output()
        .await
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        format!("{link}\n")
    );

    // A data directory the server never used: a clear error, and nothing created.
    let unused = dir.path().join("unused");
    let mut command = Command::new(labboard_bin());
    clear_labboard_env(&mut command);
    let refused = command
        .arg("organizer-url")
        .arg("--data-dir")
        .arg(&unused)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("start the server once"), "{stderr}");
    assert!(!unused.exists());
}

/// The join rate limit's failures allowed per address and window (`api::MAX_FAILED_ATTEMPTS`).
const JOIN_FAILURES_ALLOWED: usize = labboard::api::MAX_FAILED_ATTEMPTS;

/// Uses up the join failures of the client `X-Forwarded-For` names; the next attempt is
/// refused.
async fn exhaust_join_limit(addr: SocketAddr, forwarded: &str) -> anyhow::Result<()> {
    let header = [("X-Forwarded-For", forwarded)];
    for attempt in 0..JOIN_FAILURES_ALLOWED {
        let status = join_with(addr, "ZZZZZZ", &header).await;
        if status != 404 {
            bail!("attempt {attempt} answered {status}");
        }
    }
    let status = join_with(addr, "ZZZZZZ", &header).await;
    if status != 429 {
        bail!("the attempt past the limit answered {status}");
    }
    Ok(())
}

#[tokio::test]
async fn forwarded_addresses_move_the_rate_limit_bucket_only_from_a_trusted_proxy() {
    let organizer = "logs-test-organizer";

    let dir = tempfile::tempdir().unwrap();
    let trusted = Logged::start(
        dir.path(),
        Some(organizer),
        &["--trusted-proxy", "127.0.0.1/32", "--log-format", "json"],
    )
    .await;
    let lab = create_lab(trusted.addr, organizer).await;
    exhaust_join_limit(trusted.addr, "198.51.100.1")
        .await
        .context("trusted proxy")
        .unwrap();
    let code = lab.join_code.as_str();
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    assert_eq!(
        join_with(trusted.addr, code, &from("198.51.100.1")).await,
        429
    );
    assert_eq!(
        join_with(trusted.addr, code, &from("198.51.100.2")).await,
        200
    );
    // The client wrote the left entry; the proxy appended the address it saw.
    let chain = from("198.51.100.1, 198.51.100.3");
    assert_eq!(join_with(trusted.addr, code, &chain).await, 200);
    let standard = [("Forwarded", "for=\"198.51.100.1\", for=198.51.100.4")];
    assert_eq!(join_with(trusted.addr, code, &standard).await, 200);
    let output = trusted.stop().await;
    let peers: Vec<String> = output
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["target"] == "labboard::access" && event["route"] == "/api/join")
        .map(|event| event["peer"].as_str().unwrap_or_default().to_owned())
        .collect();
    for ip in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ] {
        assert!(peers.iter().any(|peer| peer == ip), "{ip} in {peers:?}");
    }
    assert!(!peers.iter().any(|peer| peer == "127.0.0.1"), "{peers:?}");

    // Without --trusted-proxy the header is ignored: every request is the socket's address.
    let dir = tempfile::tempdir().unwrap();
    let untrusted = Logged::start(dir.path(), Some(organizer), &["--log-format", "json"]).await;
    let lab = create_lab(untrusted.addr, organizer).await;
    exhaust_join_limit(untrusted.addr, "198.51.100.1")
        .await
        .context("no trusted proxy")
        .unwrap();
    let code = lab.join_code.as_str();
    assert_eq!(
        join_with(untrusted.addr, code, &from("198.51.100.2")).await,
        429
    );
    let standard = [("Forwarded", "for=198.51.100.4")];
    assert_eq!(join_with(untrusted.addr, code, &standard).await, 429);
    let output = untrusted.stop().await;
    assert!(
        !output.stderr.contains("198.51.100."),
        "an untrusted forwarded address reached the log"
    );
}

/// A bad `--trusted-proxy` stops the start with a message naming it.
#[tokio::test]
async fn a_bad_trusted_proxy_range_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(labboard_bin());
    clear_labboard_env(&mut command);
    let run = within(
        "labboard refuses to start",
        command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--trusted-proxy")
            .arg("10.0.0.0/8,192.168.1.0/33")
            .output(),
    )
    .await
    .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("192.168.1.0/33"), "{stderr}");
    assert!(stderr.contains("not an address range"), "{stderr}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}
