//! Keeps the load generator working: every scenario once, at a tiny size, against the real
//! `labboard` binary started by the bench itself. Only correctness is asserted (every note
//! arrived, every replica converged, the JSON has its fields); speed is for real runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The `labboard` binary of this build (`cargo test` builds it for the server's own
/// integration tests), or `LABBOARD_BIN`.
fn labboard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LABBOARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    dir.join(format!("labboard{}", std::env::consts::EXE_SUFFIX))
}

/// Runs one scenario with `--json` and returns its JSON object, failing on a non-zero exit.
fn bench(scenario: &[&str]) -> Value {
    let server = labboard_bin();
    assert!(
        server.exists(),
        "{} is missing: build it with `cargo build -p labboard` (or set LABBOARD_BIN)",
        server.display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_labboard-bench"))
        .arg("--start-labboard")
        .arg(&server)
        .args(["--json", "--timeout", "90s", "--settle", "20s"])
        .args(scenario)
        .output()
        .expect("running labboard-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Only correctness counts here, never timing: every note arrived, every replica has the
    // projector's heads, and the server acknowledged them (what clears "waiting" on a phone).
    assert_eq!(
        output.status.code(),
        Some(0),
        "{scenario:?} failed a check:\n{stderr}\n{stdout}"
    );
    let line = stdout.lines().last().expect("one JSON line on stdout");
    let json: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
    let failures = json["failures"].as_array().expect("failures is a list");
    assert!(failures.is_empty(), "{scenario:?}: {json}\n{stderr}");
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(json["target"]["kind"], "labboard", "{json}");
    for key in ["cpuS", "cpuPercentOfOneCore", "peakRssKiB", "vmHwmKiB"] {
        assert!(json["server"][key].is_number(), "server.{key} in {json}");
    }
    assert!(json["generator"]["cpuS"].is_number(), "{json}");
    assert!(json["measuredS"].is_number(), "{json}");
    json
}

/// The checks every note-posting scenario shares.
fn assert_notes_delivered(json: &Value, expected: u64) {
    assert_eq!(json["notesSent"], expected, "{json}");
    assert_eq!(json["notesReceived"], expected, "{json}");
    assert_eq!(json["notesLost"], 0, "{json}");
    assert_eq!(json["headsEqual"], true, "{json}");
    assert_eq!(json["replicasConverged"], json["replicas"], "{json}");
    for key in ["p50", "p95", "p99", "max"] {
        assert!(
            json["latencyMs"][key].is_number(),
            "latencyMs.{key} in {json}"
        );
    }
    assert!(json["throughputNotesPerS"].is_number(), "{json}");
}

#[test]
fn steady() {
    let json = bench(&[
        "steady",
        "--observers",
        "3",
        "--notes",
        "3",
        "--interval",
        "50ms",
    ]);
    assert_eq!(json["scenario"], "steady");
    assert_notes_delivered(&json, 9);
}

#[test]
fn burst() {
    let json = bench(&["burst", "--observers", "3", "--notes", "5"]);
    assert_eq!(json["scenario"], "burst");
    assert_notes_delivered(&json, 15);
}

#[test]
fn labs() {
    let json = bench(&[
        "labs",
        "2",
        "--observers",
        "2",
        "--interval",
        "100ms",
        "--duration",
        "300ms",
    ]);
    assert_eq!(json["scenario"], "labs");
    assert_eq!(json["params"]["notesPerObserver"], 3, "{json}");
    assert_notes_delivered(&json, 2 * 2 * 3);
    assert_eq!(json["replicas"], 6, "{json}");
}

#[test]
fn coldload() {
    let json = bench(&[
        "coldload",
        "--notes",
        "30",
        "--writers",
        "3",
        "--fetches",
        "2",
    ]);
    assert_eq!(json["scenario"], "coldload");
    assert_eq!(json["boardNotes"], 30, "{json}");
    assert_eq!(json["fetchesComplete"], 2, "{json}");
    assert_eq!(json["headsEqual"], true, "{json}");
    assert!(json["loadMs"]["p50"].is_number(), "{json}");
}

#[test]
fn boards() {
    let json = bench(&[
        "boards",
        "2",
        "--notes",
        "24",
        "--writers",
        "3",
        "--unload-wait",
        "0",
    ]);
    assert_eq!(json["scenario"], "boards");
    assert_eq!(json["boardsLoaded"], 2, "{json}");
    for key in [
        "rssAfterRestartKiB",
        "rssConnectedKiB",
        "rssLoadedKiB",
        "rssPerBoardKiB",
    ] {
        assert!(json[key].is_number(), "{key} in {json}");
    }
}

#[test]
fn idle() {
    let json = bench(&["idle", "15", "--per-lab", "6", "--hold", "200ms"]);
    assert_eq!(json["scenario"], "idle");
    assert_eq!(json["stillConnected"], 15, "{json}");
    assert_eq!(json["serverConnections"], 15, "{json}");
    assert!(json["rssPerConnectionKiB"].is_number(), "{json}");
}

#[test]
fn photos() {
    let json = bench(&[
        "photos",
        "--phones",
        "3",
        "--photos-per-phone",
        "2",
        "--photo-kb",
        "50",
        "--interval",
        "100ms",
        "--duration",
        "1s",
    ]);
    assert_eq!(json["scenario"], "photos");
    // Every photo stored: 201, with the size of the photo less its EXIF segment.
    let uploads = &json["uploads"];
    assert_eq!(uploads["count"], 6, "{json}");
    assert_eq!(uploads["stored"], 6, "{json}");
    assert_eq!(uploads["failed"], 0, "{json}");
    assert_eq!(uploads["bytes"], 6 * 50_000, "{json}");
    assert!(uploads["megabytesPerS"].is_number(), "{json}");
    assert!(uploads["latencyMs"]["p99"].is_number(), "{json}");
    // Ten notes a phone, more if the uploads outlast the window; every one arrived.
    let sent = json["notesSent"].as_u64().expect("notesSent");
    assert!(sent >= 30, "{json}");
    assert_notes_delivered(&json, sent);
    assert_eq!(json["replicas"], 4, "{json}");
    // Each note is in one phase; the second half's are due after the uploads start.
    let phase = |key: &str| json[key]["notes"].as_u64().expect("a phase's notes");
    assert_eq!(phase("phaseA") + phase("phaseB"), sent, "{json}");
    assert!(phase("phaseB") >= 15, "{json}");
    assert!(json["phaseB"]["latencyMs"]["p99"].is_number(), "{json}");
    assert!(json["phaseB"]["serverCpuS"].is_number(), "{json}");
}

#[test]
fn a_refused_photo_fails_the_run_with_the_reason() {
    // The server the bench starts takes the bench's environment: room for two photos of this
    // lab, and the third is answered 507.
    let output = Command::new(env!("CARGO_BIN_EXE_labboard-bench"))
        .env("LABBOARD_MAX_LAB_PHOTO_BYTES", "100000")
        .arg("--start-labboard")
        .arg(labboard_bin())
        .args(["--timeout", "90s", "--settle", "20s", "photos"])
        .args([
            "--phones",
            "1",
            "--photos-per-phone",
            "3",
            "--photo-kb",
            "40",
        ])
        .args(["--interval", "100ms", "--duration", "400ms"])
        .output()
        .expect("running labboard-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}\n{stdout}");
    assert!(stderr.contains("UPLOAD FAILED: 1 of 3"), "{stderr}");
    assert!(stderr.contains("photo 3: HTTP 507"), "{stderr}");
    assert!(stdout.contains("2 of 3 stored (201)"), "{stdout}");
}

#[test]
fn photos_need_a_labboard() {
    let output = Command::new(env!("CARGO_BIN_EXE_labboard-bench"))
        .args([
            "--sync-url",
            "ws://127.0.0.1:9/",
            "--timeout",
            "10s",
            "photos",
        ])
        .output()
        .expect("running labboard-bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("photos needs a labboard"), "{stderr}");
}

#[test]
fn a_bad_size_is_refused_with_an_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_labboard-bench"))
        .args(["--sync-url", "ws://127.0.0.1:9/", "--timeout", "10s"])
        .args(["steady", "--observers", "0"])
        .output()
        .expect("running labboard-bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 1"), "{stderr}");
}

/// `compare` at a tiny size: both servers started, every scenario run against each, one
/// table and one JSON object out. Needs the reference server installed
/// (`npm ci --prefix bench/reference`, done by `scripts/test`).
#[test]
fn compare_runs_every_scenario_against_both_servers() {
    let server = labboard_bin();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
    let output = Command::new(env!("CARGO_BIN_EXE_labboard-bench"))
        .args(["--json", "--settle", "20s", "compare", "--rounds", "1"])
        .arg("--labboard-bin")
        .arg(&server)
        .arg("--reference-dir")
        .arg(&reference)
        .args(["--idle-phones", "12", "--labs-steps", "1,2"])
        .args(["--labs-interval", "1s", "--labs-duration", "2s"])
        // Both servers should hold two tiny labs under a minute; the point is the stepping.
        .args(["--labs-limit-ms", "60000", "--labs-stop-ms", "60000"])
        .output()
        .expect("running labboard-bench compare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{stdout}");
    let json: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    let runs = json["runs"].as_array().expect("runs");
    for scenario in ["steady", "burst", "coldload", "idle"] {
        for server in ["labboard", "reference"] {
            let run = runs
                .iter()
                .find(|run| run["scenario"] == scenario && run["server"] == server)
                .unwrap_or_else(|| panic!("no {scenario} run against {server}: {json}"));
            assert_eq!(run["outcome"], "ok", "{run}");
            let kind = if server == "labboard" {
                "labboard"
            } else {
                "sync-url"
            };
            assert_eq!(run["report"]["target"]["kind"], kind, "{run}");
        }
    }
    let labs = runs.iter().filter(|run| run["scenario"] == "labs").count();
    assert_eq!(labs, 4, "two steps for each server: {json}");
    assert_eq!(json["labsHeld"]["labboard"], 2, "{json}");
    assert_eq!(json["labsHeld"]["reference"], 2, "{json}");
    assert!(
        stderr.contains("labboard / reference"),
        "the table: {stderr}"
    );
}

#[test]
fn several_nodes_need_a_database_and_a_way_to_reach_them() {
    let output = Command::new(env!("CARGO_BIN_EXE_labboard-bench"))
        .arg("--start-labboard")
        .arg(labboard_bin())
        .args(["--timeout", "20s", "--nodes", "2", "--proxy", "nginx"])
        .args(["labs", "1"])
        .output()
        .expect("running labboard-bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs --database-url"), "{stderr}");
}

#[test]
fn failover_needs_two_nodes_behind_nginx() {
    let output = Command::new(env!("CARGO_BIN_EXE_labboard-bench"))
        .arg("--start-labboard")
        .arg(labboard_bin())
        .args(["--timeout", "20s", "failover", "--labs", "1"])
        .output()
        .expect("running labboard-bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failover needs"), "{stderr}");
}
