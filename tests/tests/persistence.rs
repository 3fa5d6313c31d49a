//! Durability: documents survive restarts, and changes a client saw acknowledged survive a
//! SIGKILL of the server process.

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use labboard_tests::{within, ServerProcess, TestServer};

fn list_doc() -> Automerge {
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put_object(ROOT, "notes", ObjType::List)?;
        Ok(())
    })
    .unwrap();
    doc
}

fn push(doc: &labboard_protocol::client::DocHandle, text: &str) {
    doc.change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        let at = tx.length(&notes);
        tx.insert(&notes, at, text).unwrap();
    });
}

fn notes(doc: &Automerge) -> Vec<String> {
    let Some((_, list)) = doc.get(ROOT, "notes").ok().flatten() else {
        return Vec::new();
    };
    (0..doc.length(&list))
        .filter_map(|i| doc.get(&list, i).ok().flatten())
        .filter_map(|(v, _)| v.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn every_document_is_intact_after_a_graceful_restart() {
    let server = TestServer::start().await;
    let client = Client::connect(&server.ws_url(), PeerId::from("writer"))
        .await
        .unwrap();
    let mut saved = Vec::new();
    // Enough changes on one document to pass the compaction threshold, plus a few documents.
    for d in 0..5 {
        let doc = client.create(list_doc());
        let count = if d == 0 { 150 } else { 3 };
        for n in 0..count {
            push(&doc, &format!("doc {d} note {n}"));
            if n % 10 == 0 {
                within("synced", doc.wait_synced()).await.unwrap();
            }
        }
        within("synced", doc.wait_synced()).await.unwrap();
        saved.push((doc.id(), doc.heads(), doc.with_doc(notes)));
    }
    client.close().await;

    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let reader = Client::connect(&server.ws_url(), PeerId::from("reader"))
        .await
        .unwrap();
    for (id, heads, expected) in saved {
        let doc = within("find after restart", reader.find(id)).await.unwrap();
        assert_eq!(doc.heads(), heads);
        assert_eq!(doc.with_doc(notes), expected);
    }
}

#[tokio::test]
async fn acknowledged_changes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path()).await.unwrap();
    let client = Client::connect(&server.ws_url(), PeerId::from("phone"))
        .await
        .unwrap();
    let doc = client.create(list_doc());
    for n in 0..40 {
        push(&doc, &format!("note {n}"));
    }
    // The server advertised heads that include every note: they must be on disk already.
    within("acknowledged", doc.wait_synced()).await.unwrap();
    let acknowledged = doc.heads();
    server.kill().await.unwrap();
    drop(client);

    let server = ServerProcess::spawn(dir.path()).await.unwrap();
    let reader = Client::connect(&server.ws_url(), PeerId::from("reader"))
        .await
        .unwrap();
    let found = within("find after kill", reader.find(doc.id()))
        .await
        .unwrap();
    assert_eq!(found.heads(), acknowledged);
    assert_eq!(found.with_doc(notes).len(), 40);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path()).await.unwrap();
    let client = Client::connect(&server.ws_url(), PeerId::from("phone"))
        .await
        .unwrap();
    let doc = client.create(list_doc());
    push(&doc, "before shutdown");
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
    let reader = Client::connect(&server.ws_url(), PeerId::from("reader"))
        .await
        .unwrap();
    let found = within("find after restart", reader.find(doc.id()))
        .await
        .unwrap();
    assert_eq!(found.with_doc(notes), vec!["before shutdown".to_owned()]);
}
