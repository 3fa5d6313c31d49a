//! `labboard backup` and schema versions, against the built binary: a backup taken while
//! phones write restores to a server holding every note acknowledged before it began; an
//! existing file is not replaced without `--force`; a database from a newer Labboard is refused
//! at start. And `labboard healthcheck`, the container's health check, against a real server.

use std::path::Path;
use std::process::Output;

use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use labboard_tests::{
    add_note, create_lab, join_lab, labboard_bin, note, note_count, sync_url, within, ServerProcess,
};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Runs `labboard backup <file> --data-dir <data_dir>` with `extra` flags.
async fn run_backup(data_dir: &Path, file: &Path, extra: &[&str]) -> Output {
    within(
        "labboard backup",
        Command::new(labboard_bin())
            .arg("backup")
            .arg(file)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env_remove("LABBOARD_DATA_DIR")
            .output(),
    )
    .await
    .expect("running labboard backup")
}

#[tokio::test]
async fn a_backup_taken_while_phones_write_restores_every_acknowledged_note() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(data.path()).await.unwrap();
    let lab = create_lab(server.addr, "Making ten").await;

    // Two phones write notes without pause; each publishes how many of its notes the server
    // acknowledged (stored on disk).
    let stop = CancellationToken::new();
    let mut writers = Vec::new();
    let mut acknowledged = Vec::new();
    for phone in ["ana", "ben"] {
        let token = join_lab(server.addr, &lab.join_code, phone).await;
        let client = within(
            "connect",
            Client::connect(&sync_url(server.addr, &token), PeerId::from(phone)),
        )
        .await
        .unwrap();
        let board = within("find the board", client.find(lab.doc_id))
            .await
            .unwrap();
        let (count_tx, count_rx) = tokio::sync::watch::channel(0usize);
        acknowledged.push(count_rx);
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut written = 0;
            while !stop.is_cancelled() {
                add_note(&board, &format!("{phone}-{written}"), "a note");
                written += 1;
                board.wait_synced().await.unwrap();
                count_tx.send_replace(written);
            }
            client.close().await;
            written
        }));
    }
    for count in &mut acknowledged {
        within("first notes stored", count.wait_for(|n| *n >= 10))
            .await
            .unwrap();
    }
    let before: Vec<usize> = acknowledged.iter().map(|count| *count.borrow()).collect();

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("labboard-backup.db");
    let output = run_backup(data.path(), &file, &[]).await;
    assert!(
        output.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("backed up"));
    // The phones kept writing through the backup and after it.
    for (count, before) in acknowledged.iter_mut().zip(&before) {
        let goal = before + 10;
        within(
            "notes stored after the backup",
            count.wait_for(|n| *n >= goal),
        )
        .await
        .unwrap();
    }
    stop.cancel();
    for writer in writers {
        within("writer stops", writer).await.unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup is readable by its owner only");
    }

    // Restore: a copy of the backup as the database of a new data directory.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("labboard.db")).unwrap();
    let server = ServerProcess::spawn(restored.path()).await.unwrap();
    let token = join_lab(server.addr, &lab.join_code, "reader").await;
    let client = within(
        "connect to the restored server",
        Client::connect(&sync_url(server.addr, &token), PeerId::from("reader")),
    )
    .await
    .unwrap();
    let board = within("find the restored board", client.find(lab.doc_id))
        .await
        .unwrap();
    for (phone, before) in ["ana", "ben"].iter().zip(&before) {
        for n in 0..*before {
            assert_eq!(
                board.with_doc(|doc| note(doc, &format!("{phone}-{n}"))),
                Some("a note".to_owned()),
                "{phone}'s note {n} was acknowledged before the backup began"
            );
        }
    }
    assert!(board.with_doc(note_count) >= before.iter().sum::<usize>());
}

#[tokio::test]
async fn backup_refuses_an_existing_file_and_a_missing_database() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(data.path()).await.unwrap();
    create_lab(server.addr, "Making ten").await;
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup.db");
    std::fs::write(&file, "an older backup").unwrap();

    let output = run_backup(data.path(), &file, &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "an older backup");

    let output = run_backup(data.path(), &file, &["--force"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::read(&file)
        .unwrap()
        .starts_with(b"SQLite format 3\0"));
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        1,
        "no temporary file is left"
    );

    let nowhere = out.path().join("not-a-data-dir");
    let output = run_backup(&nowhere, &out.path().join("other.db"), &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(!nowhere.exists(), "the backup created nothing");
    server.terminate().await.unwrap();

    // A server on PostgreSQL has nothing here to copy: the command says what to use instead.
    let output = within(
        "labboard backup with a database URL",
        Command::new(labboard_bin())
            .arg("backup")
            .arg(out.path().join("pg.db"))
            .arg("--data-dir")
            .arg(data.path())
            .env(
                "LABBOARD_DATABASE_URL",
                "postgres://labboard@db.example/labboard",
            )
            .output(),
    )
    .await
    .expect("running labboard backup");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(!out.path().join("pg.db").exists());
}

#[tokio::test]
async fn a_database_from_a_newer_labboard_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(data.path()).await.unwrap();
    create_lab(server.addr, "Making ten").await;
    assert!(server.terminate().await.unwrap().success());
    let db = data.path().join("labboard.db");
    let current: i64 = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let current = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        current
    };

    let output = within(
        "labboard exits",
        Command::new(labboard_bin())
            .env("LABBOARD_ADMIN_TOKEN", labboard_tests::TEST_ORGANIZER_TOKEN)
            .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
            .arg(data.path())
            .output(),
    )
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("schema version 99"), "{stderr}");
    assert!(stderr.contains(&format!("up to {current}")), "{stderr}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let after: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(after, 99, "the newer database was left as it was");
}

#[tokio::test]
async fn healthcheck_passes_while_the_server_runs_and_fails_once_it_stopped() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(data.path()).await.unwrap();
    let listen = server.addr.to_string();
    let healthcheck = || async {
        within(
            "labboard healthcheck",
            Command::new(labboard_bin())
                .args(["healthcheck", "--listen", &listen])
                .output(),
        )
        .await
        .unwrap()
    };
    let output = healthcheck().await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(server.terminate().await.unwrap().success());
    let output = healthcheck().await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("connecting to"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
