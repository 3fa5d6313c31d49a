//! Sync through the real server: convergence, fan-out, the lab's scope (documents outside it
//! are unavailable and cannot be created), ephemeral relay, reconnects and idle unloading.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use labboard_protocol::client::{Client, ClientError, DocHandle};
use labboard_protocol::{DocumentId, Message, PeerId};
use labboard_tests::{add_note, note, note_count, within, Lab, RawPeer, TestServer};

/// Joins `lab` as `name` and connects with the token, as a phone does after scanning the code.
async fn connect(server: &TestServer, lab: &Lab, name: &str) -> Client {
    let token = server.join(&lab.join_code, name).await;
    within(
        "connect",
        Client::connect(&server.sync_url(&token), PeerId::from(name)),
    )
    .await
    .expect("client connects")
}

/// Fetches the lab's board, which the server created with the lab.
async fn board(client: &Client, lab: &Lab) -> DocHandle {
    within("find the lab's board", client.find(lab.doc_id))
        .await
        .expect("the lab's board is available")
}

/// A board-like document made on the client, to try to get it onto the server.
fn local_board(marker: &str) -> Automerge {
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "title", marker)?;
        tx.put_object(ROOT, "notes", ObjType::Map)?;
        Ok(())
    })
    .expect("initial change");
    doc
}

#[tokio::test]
async fn two_clients_converge() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let alice = connect(&server, &lab, "alice").await;
    let bob = connect(&server, &lab, "bob").await;

    let a = board(&alice, &lab).await;
    let b = board(&bob, &lab).await;
    assert_eq!(b.heads(), a.heads());

    add_note(&a, "n1", "T. counted by 2s");
    add_note(&b, "n2", "M. drew ten frames");
    within(
        "alice sees bob's note",
        a.wait_until(|d| note(d, "n2").is_some()),
    )
    .await
    .unwrap();
    within(
        "bob sees alice's note",
        b.wait_until(|d| note(d, "n1").is_some()),
    )
    .await
    .unwrap();
    within("alice synced", a.wait_synced()).await.unwrap();
    within("bob synced", b.wait_synced()).await.unwrap();
    assert_eq!(a.heads(), b.heads());
    assert_eq!(
        b.with_doc(|d| note(d, "n1")).as_deref(),
        Some("T. counted by 2s")
    );
}

#[tokio::test]
async fn twelve_clients_with_concurrent_changes_reach_identical_heads() {
    const PHONES: usize = 12;
    const NOTES_EACH: usize = 10;
    let server = TestServer::start().await;
    let lab = server.create_lab("Twelve phones").await;

    let mut handles = Vec::new();
    let mut clients = Vec::new();
    for i in 0..PHONES {
        let client = connect(&server, &lab, &format!("phone-{i}")).await;
        handles.push(board(&client, &lab).await);
        clients.push(client);
    }
    // Everyone writes at once, interleaved, without waiting for anything.
    for n in 0..NOTES_EACH {
        for (i, handle) in handles.iter().enumerate() {
            add_note(
                handle,
                &format!("p{i}-n{n}"),
                &format!("note {n} from phone {i}"),
            );
        }
    }
    for handle in &handles {
        within(
            "all notes everywhere",
            handle.wait_until(|d| note_count(d) == PHONES * NOTES_EACH),
        )
        .await
        .unwrap();
    }
    for handle in &handles {
        within("synced", handle.wait_synced()).await.unwrap();
    }
    let heads = handles[0].heads();
    for handle in &handles {
        assert_eq!(handle.heads(), heads);
    }

    // The server's own copy converged too: a fresh client fetches exactly those heads.
    let late = connect(&server, &lab, "late").await;
    let fetched = board(&late, &lab).await;
    within(
        "late synced",
        fetched.wait_until(|d| note_count(d) == PHONES * NOTES_EACH),
    )
    .await
    .unwrap();
    assert_eq!(fetched.heads(), heads);
}

/// Asserts that `find(id)` on `client` is answered `Unavailable`.
async fn assert_unavailable(client: &Client, id: DocumentId) {
    match within("find outside the lab", client.find(id)).await {
        Err(ClientError::Unavailable(missing)) => assert_eq!(missing, id),
        other => panic!("expected Unavailable for {id}, got {other:?}"),
    }
}

#[tokio::test]
async fn documents_outside_the_lab_are_unavailable_and_cannot_be_created() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let other_lab = server.create_lab("Another school").await;
    let alice = connect(&server, &lab, "alice").await;

    // An id nobody has, and the board of another lab, look exactly the same: unavailable.
    assert_unavailable(&alice, DocumentId::random()).await;
    assert_unavailable(&alice, other_lab.doc_id).await;

    // Alice tries to put new documents on the server, under a random id and under an id she
    // picked, and to overwrite the other lab's board with her own history.
    let created = alice.create(local_board("made by alice"));
    let chosen = DocumentId::random();
    alice.create_with_id(chosen, local_board("made by alice too"));
    alice.create_with_id(other_lab.doc_id, local_board("written into a lab"));
    // The server handles one connection's frames in order: once this later `find` is answered,
    // the three uploads above have been handled too.
    assert_unavailable(&alice, DocumentId::random()).await;

    // Nobody else can fetch them: not a phone of the same lab ...
    let bob = connect(&server, &lab, "bob").await;
    assert_unavailable(&bob, created.id()).await;
    assert_unavailable(&bob, chosen).await;
    // ... and the other lab's board is untouched.
    let carol = connect(&server, &other_lab, "carol").await;
    let theirs = board(&carol, &other_lab).await;
    within("carol synced", theirs.wait_synced()).await.unwrap();
    assert!(
        theirs.with_doc(|d| d.get(ROOT, "title").unwrap().is_none()),
        "alice's change reached another lab's board"
    );

    // A raw `request` for the id alice tried to create is answered `doc-unavailable`, while the
    // same request for the lab's board gets the board: the refusal is about scope.
    let token = server.join(&lab.join_code, "watcher").await;
    let (mut raw, server_peer) = RawPeer::joined(&server.sync_url(&token), "watcher")
        .await
        .unwrap();
    for id in [chosen, lab.doc_id] {
        let empty = Automerge::new();
        let mut state = automerge::sync::State::new();
        let request = automerge::sync::SyncDoc::generate_sync_message(&empty, &mut state)
            .expect("initial message");
        raw.send(&Message::Request {
            sender_id: PeerId::from("watcher"),
            target_id: server_peer.clone(),
            document_id: id,
            data: request.encode(),
        })
        .await
        .unwrap();
    }
    match raw.recv().await.unwrap() {
        Message::DocUnavailable { document_id, .. } => assert_eq!(document_id, chosen),
        other => panic!("expected doc-unavailable, got {other:?}"),
    }
    match raw.recv().await.unwrap() {
        Message::Sync {
            document_id, data, ..
        } => {
            assert_eq!(document_id, lab.doc_id);
            let mut copy = Automerge::new();
            let mut state = automerge::sync::State::new();
            let message = automerge::sync::Message::decode(&data).unwrap();
            automerge::sync::SyncDoc::receive_sync_message(&mut copy, &mut state, message).unwrap();
            let own = board(&bob, &lab).await;
            assert_eq!(copy.get_heads(), own.heads());
        }
        other => panic!("expected the lab's board, got {other:?}"),
    }
}

#[tokio::test]
async fn ephemeral_messages_reach_other_peers_once() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let alice = connect(&server, &lab, "alice").await;
    let bob = connect(&server, &lab, "bob").await;
    let carol = connect(&server, &lab, "carol").await;
    let a = board(&alice, &lab).await;
    board(&bob, &lab).await;
    board(&carol, &lab).await;
    let mut at_bob = bob.ephemeral();
    let mut at_carol = carol.ephemeral();
    let mut at_alice = alice.ephemeral();

    alice.broadcast(a.id(), b"here".to_vec());
    for inbox in [&mut at_bob, &mut at_carol] {
        let got = within("ephemeral", inbox.recv()).await.unwrap();
        assert_eq!(got.data, b"here");
        assert_eq!(got.sender_id, PeerId::from("alice"));
    }
    // A second broadcast arrives next, proving the first was not delivered twice, and the author
    // never gets its own message back.
    alice.broadcast(a.id(), b"again".to_vec());
    assert_eq!(
        within("second", at_bob.recv()).await.unwrap().data,
        b"again"
    );
    assert_eq!(
        within("second", at_carol.recv()).await.unwrap().data,
        b"again"
    );
    bob.broadcast(a.id(), b"from bob".to_vec());
    assert_eq!(
        within("bob's at alice", at_alice.recv())
            .await
            .unwrap()
            .data,
        b"from bob"
    );
}

#[tokio::test]
async fn a_reconnect_with_the_same_peer_id_replaces_the_old_connection() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let token = server.join(&lab.join_code, "phone").await;
    let url = server.sync_url(&token);
    let first = within("connect", Client::connect(&url, PeerId::from("phone")))
        .await
        .unwrap();
    let doc = board(&first, &lab).await;
    let offline_copy = doc.fork();

    // The same phone (same token, same peer id) comes back on a new connection.
    let second = within("reconnect", Client::connect(&url, PeerId::from("phone")))
        .await
        .unwrap();
    let closed = within("old connection closed", first.closed()).await;
    assert!(
        closed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("replaced")),
        "{closed:?}"
    );
    // The new connection syncs from a fresh state.
    let again = second.create_with_id(lab.doc_id, offline_copy);
    add_note(&again, "n1", "after reconnect");
    within("synced after reconnect", again.wait_synced())
        .await
        .unwrap();
    let other = connect(&server, &lab, "projector").await;
    let seen = board(&other, &lab).await;
    within("note arrives", seen.wait_until(|d| note(d, "n1").is_some()))
        .await
        .unwrap();
}

#[tokio::test]
async fn offline_edits_merge_after_reconnecting() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let token = server.join(&lab.join_code, "phone").await;
    let url = server.sync_url(&token);
    let phone = within("connect", Client::connect(&url, PeerId::from("phone")))
        .await
        .unwrap();
    let projector = connect(&server, &lab, "projector").await;
    let doc = board(&phone, &lab).await;
    let shown = board(&projector, &lab).await;

    // The phone goes offline and keeps writing; meanwhile the projector writes too.
    let mut offline = doc.fork();
    phone.close().await;
    offline
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            let notes = tx.get(ROOT, "notes")?.expect("notes").1;
            tx.put(&notes, "offline-1", "written in the hallway")?;
            tx.put(&notes, "offline-2", "and on the stairs")?;
            Ok(())
        })
        .unwrap();
    add_note(&shown, "projector-1", "pinned by the facilitator");

    let phone = within("reconnect", Client::connect(&url, PeerId::from("phone")))
        .await
        .unwrap();
    let back = phone.create_with_id(lab.doc_id, offline);
    within("phone merged", back.wait_until(|d| note_count(d) == 3))
        .await
        .unwrap();
    within("projector merged", shown.wait_until(|d| note_count(d) == 3))
        .await
        .unwrap();
    within("phone synced", back.wait_synced()).await.unwrap();
    within("projector synced", shown.wait_synced())
        .await
        .unwrap();
    assert_eq!(back.heads(), shown.heads());
}

#[tokio::test]
async fn idle_documents_are_unloaded_and_reloaded_on_demand() {
    let server = TestServer::start_with(|config| {
        config.idle_unload = Duration::from_millis(200);
    })
    .await;
    let lab = server.create_lab("Making ten").await;
    let health = || async {
        let body = reqwest_health(&server).await;
        body["documentsLoaded"].as_u64().unwrap()
    };
    let alice = connect(&server, &lab, "alice").await;
    let doc = board(&alice, &lab).await;
    add_note(&doc, "n1", "kept across unloads");
    within("upload", doc.wait_synced()).await.unwrap();
    assert_eq!(health().await, 1);
    alice.close().await;

    within("unload", async {
        while health().await != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let bob = connect(&server, &lab, "bob").await;
    let again = within("find after unload", bob.find(lab.doc_id))
        .await
        .unwrap();
    assert_eq!(again.heads(), doc.heads());
    assert_eq!(
        again.with_doc(|d| note(d, "n1")).as_deref(),
        Some("kept across unloads")
    );
    assert_eq!(health().await, 1);
}

/// `GET /healthz` over a plain TCP connection (no HTTP client dependency needed).
async fn reqwest_health(server: &TestServer) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let body = response.split("\r\n\r\n").nth(1).expect("http body");
    serde_json::from_str(body).expect("json body")
}
