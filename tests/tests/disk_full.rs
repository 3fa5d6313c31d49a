//! A full disk acknowledges nothing it did not store, disconnects nobody, and loses nothing.
//!
//! The server's data directory lies on a small tmpfs that the test mounts, so it needs root and
//! a system that lets it mount; where it cannot, it says so and passes without running. Phones
//! and a projector sync a lab, then a ballast file takes every byte left on the tmpfs and the
//! phones keep posting. The server must keep the notes in memory without acknowledging them,
//! keep every phone connected, and store and deliver everything once the ballast is deleted.
//! A restart then shows that every note reached the disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::FutureExt;
use labboard_protocol::client::{Client, DocHandle};
use labboard_tests::{add_note, note_count, within, Lab, TestServer};
use tempfile::TempDir;

/// Size of the tmpfs: room for the database and its log, and little else.
const TMPFS_SIZE: &str = "24m";

/// Phones posting while the disk is full.
const WRITERS: usize = 2;

/// Notes each phone posts while the disk is full.
const NOTES_WHILE_FULL: usize = 5;

/// Text of each phone's first note while the disk is full: far more than the slack left at the
/// end of the database's log, so storing it certainly needs new space.
const BIG_NOTE_BYTES: usize = 64 * 1024;

/// How often the health endpoint is polled while waiting for the server to notice.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A tmpfs mounted on a temporary directory, unmounted when dropped, even when the test fails.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|err| format!("temp dir: {err}"))?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "labboard-test",
            ])
            .arg(dir.path())
            .output()
            .map_err(|err| format!("running mount: {err}"))?;
        if output.status.success() {
            Ok(Self { dir })
        } else {
            Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a server that a failing test left running still holds its files open.
        match Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status()
        {
            Ok(status) if status.success() => {}
            other => eprintln!("unmounting {}: {other:?}", self.dir.path().display()),
        }
    }
}

/// A file that takes every byte left on the file system it is on, until deleted.
struct Ballast {
    path: PathBuf,
}

impl Ballast {
    fn fill(path: PathBuf) -> std::io::Result<Self> {
        let mut file = std::fs::File::create(&path)?;
        // Large blocks first, then small ones for the last partly free page.
        for block in [64 * 1024, 512] {
            let bytes = vec![0xa5_u8; block];
            loop {
                match file.write_all(&bytes) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::StorageFull => break,
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(Self { path })
    }

    fn remove(self) {
        std::fs::remove_file(&self.path).expect("delete the ballast");
    }
}

/// Text that does not compress: automerge deflates what it stores.
fn incompressible(bytes: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..bytes)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

async fn connect(server: &TestServer, lab: &Lab, name: &str) -> (Client, DocHandle) {
    server.phone(lab, name).await
}

async fn health(server: &TestServer) -> serde_json::Value {
    server.http("GET", "/healthz", None, None).await.json()
}

fn assert_connected(name: &str, client: &Client) {
    if let Some(closed) = client.closed().now_or_never() {
        panic!("{name} was disconnected: {closed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_acknowledges_nothing_disconnects_nobody_and_loses_nothing() {
    let mount = match Tmpfs::mount(TMPFS_SIZE) {
        Ok(mount) => mount,
        Err(why) => {
            eprintln!("SKIPPED: this test needs to mount a tmpfs (run it as root): {why}");
            return;
        }
    };
    let data = tempfile::tempdir_in(mount.path()).expect("data dir on the tmpfs");
    let server = TestServer::start_in(data, |_| {}).await;
    let lab = server.create_lab("Full disk").await;
    let (projector, shown) = connect(&server, &lab, "projector").await;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        writers.push(connect(&server, &lab, &format!("phone-{w}")).await);
    }
    add_note(&writers[0].1, "before", "posted while there was space");
    within("acknowledged", writers[0].1.wait_synced())
        .await
        .unwrap();
    let before = 1;
    within(
        "the projector shows the first note",
        shown.wait_until(|doc| note_count(doc) == before),
    )
    .await
    .unwrap();

    let ballast = Ballast::fill(mount.path().join("ballast")).expect("fill the tmpfs");
    for (w, (_, board)) in writers.iter().enumerate() {
        for n in 0..NOTES_WHILE_FULL {
            let text = if n == 0 {
                incompressible(BIG_NOTE_BYTES, w as u64)
            } else {
                format!("phone {w}, note {n}, posted while the disk is full")
            };
            add_note(board, &format!("w{w}-{n}"), &text);
        }
    }
    within("the server finds the disk full", async {
        while health(&server).await["documentsWaitingForStorage"] != 1 {
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await;

    // Nothing of what could not be stored is acknowledged or shown, and everyone stays.
    for (w, (client, board)) in writers.iter().enumerate() {
        assert!(
            !board.is_synced(),
            "phone {w} saw notes acknowledged that are not stored"
        );
        assert_connected(&format!("phone {w}"), client);
    }
    assert_eq!(
        shown.with_doc(note_count),
        before,
        "the projector was sent notes that are not stored"
    );
    assert_connected("projector", &projector);
    assert_eq!(health(&server).await["connections"], WRITERS + 1);

    ballast.remove();
    let total = before + WRITERS * NOTES_WHILE_FULL;
    within(
        "every note reaches the projector once there is space",
        shown.wait_until(|doc| note_count(doc) == total),
    )
    .await
    .expect("the projector stays connected");
    for (w, (client, board)) in writers.iter().enumerate() {
        within(
            "the server acknowledges the waiting notes",
            board.wait_synced(),
        )
        .await
        .unwrap_or_else(|err| panic!("phone {w}: {err}"));
        // Acknowledged, it may still be taking in the others' last notes.
        let everything = shown.heads();
        within(
            "every phone ends with the projector's board",
            board.wait_until(|doc| doc.get_heads() == everything),
        )
        .await
        .unwrap_or_else(|err| panic!("phone {w}: {err}"));
        assert_connected(&format!("phone {w}"), client);
    }
    assert_connected("projector", &projector);
    let health = health(&server).await;
    assert_eq!(health["connections"], WRITERS + 1, "{health}");
    assert_eq!(health["documentsWaitingForStorage"], 0, "{health}");

    // Everything acknowledged is on disk.
    drop((projector, shown, writers));
    let data = server.stop().await;
    let server = TestServer::start_in(data, |_| {}).await;
    let (_reader, board) = connect(&server, &lab, "reader").await;
    assert_eq!(board.with_doc(note_count), total);
    server.stop().await;
    drop(mount);
}
