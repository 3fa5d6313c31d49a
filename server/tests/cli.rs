//! The `labboard` binary's command line. (Also makes `cargo test` build the binary, which the
//! integration tests in `tests/` start as a child process.)

use std::process::Command;

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
