//! Durability: lab boards survive restarts, and changes a client saw acknowledged survive a
//! SIGKILL of the server process. Every lab is created through the API, as an organizer does,
//! so the board the server made at creation is part of what must survive.

use std::net::SocketAddr;

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc, ROOT};
use labboard_protocol::client::{Client, DocHandle};
use labboard_protocol::PeerId;
use labboard_tests::{create_lab, join_lab, sync_url, within, Lab, ServerProcess, TestServer};

/// Joins `lab` as `name` on the server at `addr` and fetches its board.
async fn open_board(addr: SocketAddr, lab: &Lab, name: &str) -> (Client, DocHandle) {
    let token = join_lab(addr, &lab.join_code, name).await;
    let client = within(
        "connect",
        Client::connect(&sync_url(addr, &token), PeerId::from(name)),
    )
    .await
    .unwrap();
    let board = within("find the lab's board", client.find(lab.doc_id))
        .await
        .unwrap();
    (client, board)
}

/// Adds note number `n` to the board's `notes` map; keys sort in the order notes were added.
fn add_note(doc: &DocHandle, n: usize, text: &str) {
    doc.change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        tx.put(&notes, format!("n{n:04}"), text).unwrap();
    });
}

/// The notes' texts, in key order.
fn notes(doc: &Automerge) -> Vec<String> {
    let Some((_, notes)) = doc.get(ROOT, "notes").ok().flatten() else {
        return Vec::new();
    };
    doc.keys(&notes)
        .filter_map(|key| doc.get(&notes, key).ok().flatten())
        .filter_map(|(value, _)| value.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn every_document_is_intact_after_a_graceful_restart() {
    let server = TestServer::start().await;
    let mut saved = Vec::new();
    // Enough changes on one board to pass the compaction threshold, plus a few labs.
    for l in 0..5 {
        let lab = create_lab(server.addr, &format!("Lab {l}")).await;
        let (client, doc) = open_board(server.addr, &lab, "writer").await;
        let count = if l == 0 { 150 } else { 3 };
        for n in 0..count {
            add_note(&doc, n, &format!("lab {l} note {n}"));
            if n % 10 == 0 {
                within("synced", doc.wait_synced()).await.unwrap();
            }
        }
        within("synced", doc.wait_synced()).await.unwrap();
        assert_eq!(doc.with_doc(notes).len(), count);
        saved.push((lab, doc.heads(), doc.with_doc(notes)));
        client.close().await;
    }

    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    for (lab, heads, expected) in saved {
        let (_reader, doc) = open_board(server.addr, &lab, "reader").await;
        assert_eq!(doc.heads(), heads);
        assert_eq!(doc.with_doc(notes), expected);
    }
}

#[tokio::test]
async fn acknowledged_changes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path()).await.unwrap();
    let lab = create_lab(server.addr, "Making ten").await;
    let (client, doc) = open_board(server.addr, &lab, "phone").await;
    for n in 0..40 {
        add_note(&doc, n, &format!("note {n}"));
    }
    // The server advertised heads that include every note: they must be on disk already.
    within("acknowledged", doc.wait_synced()).await.unwrap();
    let acknowledged = doc.heads();
    server.kill().await.unwrap();
    drop(client);

    let server = ServerProcess::spawn(dir.path()).await.unwrap();
    let (_reader, found) = open_board(server.addr, &lab, "reader").await;
    assert_eq!(found.heads(), acknowledged);
    assert_eq!(found.with_doc(notes).len(), 40);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path()).await.unwrap();
    let lab = create_lab(server.addr, "Making ten").await;
    let (client, doc) = open_board(server.addr, &lab, "phone").await;
    add_note(&doc, 0, "before shutdown");
    within("acknowledged", doc.wait_synced()).await.unwrap();

    let status = server.terminate().await.unwrap();
    assert!(status.success(), "exit status {status}");
    let closed = within("client sees the close", client.closed()).await;
    assert!(
        closed.code.is_some(),
        "expected a Close frame, got {closed:?}"
    );

    // The write-ahead log was checkpointed: the database file alone holds the data.
    assert!(
        !dir.path().join("labboard.db-wal").exists() || {
            std::fs::metadata(dir.path().join("labboard.db-wal"))
                .unwrap()
                .len()
                == 0
        }
    );
    let server = ServerProcess::spawn(dir.path()).await.unwrap();
    let (_reader, found) = open_board(server.addr, &lab, "reader").await;
    assert_eq!(found.with_doc(notes), vec!["before shutdown".to_owned()]);
}

/// A SIGHUP (`systemctl reload`) to a server without TLS changes nothing: it keeps serving and
/// its boards, where the signal's default would have stopped it.
#[tokio::test]
async fn sighup_without_tls_keeps_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path()).await.unwrap();
    let lab = create_lab(server.addr, "Reloaded").await;
    server.hang_up().await.unwrap();
    let (_client, board) = open_board(server.addr, &lab, "after-reload").await;
    assert!(board.with_doc(|doc| doc.get(ROOT, "notes").unwrap().is_some()));
    assert!(server.running(), "a SIGHUP must not stop the server");
    assert!(server.terminate().await.unwrap().success());
}
