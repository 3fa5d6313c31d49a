//! The `labboard` binary's command line. (Also makes `cargo test` build the binary, which the
//! integration tests in `tests/` start as a child process.)

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn labboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_labboard"))
}

#[test]
fn help_lists_every_flag_with_its_environment_variable() {
    let output = labboard()
        .arg("--help")
        .output()
        .expect("run labboard --help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8 help");
    for (flag, env) in [
        ("--listen", "LABBOARD_LISTEN"),
        ("--data-dir", "LABBOARD_DATA_DIR"),
        ("--log", "LABBOARD_LOG"),
        ("--max-frame-bytes", "LABBOARD_MAX_FRAME_BYTES"),
        ("--idle-unload", "LABBOARD_IDLE_UNLOAD"),
        ("--ping-interval", "LABBOARD_PING_INTERVAL"),
        ("--peer-timeout", "LABBOARD_PEER_TIMEOUT"),
        ("--handshake-timeout", "LABBOARD_HANDSHAKE_TIMEOUT"),
        ("--header-read-timeout", "LABBOARD_HEADER_READ_TIMEOUT"),
        ("--max-connections", "LABBOARD_MAX_CONNECTIONS"),
        (
            "--max-connections-per-address",
            "LABBOARD_MAX_CONNECTIONS_PER_ADDRESS",
        ),
        ("--admin-token", "LABBOARD_ADMIN_TOKEN"),
        ("--admin-token-file", "LABBOARD_ADMIN_TOKEN_FILE"),
        ("--retention", "LABBOARD_RETENTION"),
        ("--log-format", "LABBOARD_LOG_FORMAT"),
        ("--trusted-proxy", "LABBOARD_TRUSTED_PROXY"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        assert!(help.contains(env), "--help lacks {env}:\n{help}");
    }
}

#[test]
fn bad_values_are_refused_with_a_reason() {
    let output = labboard()
        .args(["--idle-unload", "soon"])
        .output()
        .expect("run labboard");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");

    let output = labboard()
        .args(["--listen", "not-an-address"])
        .output()
        .expect("run labboard");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));
}

#[test]
fn an_unusable_data_dir_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write file");
    let output = labboard()
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&file)
        .output()
        .expect("run labboard");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("Not a directory"),
        "{stderr}"
    );
}

/// Starts the binary on 127.0.0.1:0 with `args` and `env` (no ambient token settings), reads
/// stdout up to the facilitator's link, stops it, and returns the organizer token that link
/// carries and everything written to stderr.
fn organizer_token_of(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (String, String) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = labboard()
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
        .arg(data.path())
        .args(args)
        .env_remove("LABBOARD_ADMIN_TOKEN")
        .env_remove("LABBOARD_ADMIN_TOKEN_FILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start labboard");
    let stdout = child.stdout.take().expect("stdout");
    // Ends at the link, or at EOF if the server exits first.
    let token = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once("#organizer=").map(|(_, t)| t.to_owned()));
    child.kill().expect("stop labboard");
    child.wait().expect("reap labboard");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let token = token.unwrap_or_else(|| panic!("no facilitator link; stderr:\n{stderr}"));
    (token, stderr)
}

#[test]
fn the_organizer_token_comes_from_the_environment_or_a_file() {
    let (token, stderr) = organizer_token_of(&[], &[("LABBOARD_ADMIN_TOKEN", "from-env".as_ref())]);
    assert_eq!(token, "from-env");
    assert!(!stderr.contains("deprecated"), "{stderr}");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("organizer-token");
    std::fs::write(&file, "from-a-file\n").expect("write the token file");
    let (token, _) = organizer_token_of(&[], &[("LABBOARD_ADMIN_TOKEN_FILE", file.as_os_str())]);
    assert_eq!(token, "from-a-file");
    let path = file.to_str().expect("utf-8 temp path");
    let (token, _) = organizer_token_of(&["--admin-token-file", path], &[]);
    assert_eq!(token, "from-a-file");
}

#[test]
fn the_admin_token_flag_still_works_with_a_warning() {
    let (token, stderr) = organizer_token_of(&["--admin-token", "from-flag"], &[]);
    assert_eq!(token, "from-flag");
    assert!(
        stderr.contains("deprecated flag") && stderr.contains("LABBOARD_ADMIN_TOKEN"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("from-flag"),
        "the warning shows the token: {stderr}"
    );
}
