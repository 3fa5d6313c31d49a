//! Sync through the real server: convergence, fan-out, unavailable documents, ephemeral relay,
//! reconnects and idle unloading.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use labboard_protocol::client::{Client, ClientError, DocHandle};
use labboard_protocol::{DocumentId, Message, PeerId};
use labboard_tests::{within, RawPeer, TestServer};

async fn connect(server: &TestServer, name: &str) -> Client {
    within(
        "connect",
        Client::connect(&server.ws_url(), PeerId::from(name)),
    )
    .await
    .expect("client connects")
}

/// A board-like document: a map of notes keyed by id.
fn board() -> Automerge {
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "title", "lab")?;
        tx.put_object(ROOT, "notes", ObjType::Map)?;
        Ok(())
    })
    .expect("initial change");
    doc
}

fn add_note(handle: &DocHandle, id: &str, text: &str) {
    handle.change(|tx| {
        let notes = tx
            .get(ROOT, "notes")
            .expect("read notes")
            .expect("notes exist")
            .1;
        tx.put(&notes, id, text).expect("put note");
    });
}

fn note_count(doc: &Automerge) -> usize {
    doc.get(ROOT, "notes")
        .ok()
        .flatten()
        .map_or(0, |(_, notes)| doc.length(&notes))
}

fn note(doc: &Automerge, id: &str) -> Option<String> {
    let (_, notes) = doc.get(ROOT, "notes").ok()??;
    let (value, _) = doc.get(&notes, id).ok()??;
    value.as_str().map(str::to_owned)
}

#[tokio::test]
async fn two_clients_converge() {
    let server = TestServer::start().await;
    let alice = connect(&server, "alice").await;
    let bob = connect(&server, "bob").await;

    let a = alice.create(board());
    within("alice's upload", a.wait_synced()).await.unwrap();
    let b = within("bob's find", bob.find(a.id())).await.unwrap();
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
    let first = connect(&server, "phone-0").await;
    let origin = first.create(board());
    within("upload", origin.wait_synced()).await.unwrap();

    let mut handles = vec![origin.clone()];
    let mut clients = vec![first];
    for i in 1..PHONES {
        let client = connect(&server, &format!("phone-{i}")).await;
        handles.push(within("find", client.find(origin.id())).await.unwrap());
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
    let late = connect(&server, "late").await;
    let fetched = within("late find", late.find(origin.id())).await.unwrap();
    within(
        "late synced",
        fetched.wait_until(|d| note_count(d) == PHONES * NOTES_EACH),
    )
    .await
    .unwrap();
    assert_eq!(fetched.heads(), heads);
}

#[tokio::test]
async fn unknown_document_is_unavailable_until_someone_uploads_it() {
    let server = TestServer::start().await;
    let alice = connect(&server, "alice").await;
    let id = DocumentId::random();
    match within("find unknown", alice.find(id)).await {
        Err(ClientError::Unavailable(missing)) => assert_eq!(missing, id),
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // A raw peer that asked and was told "unavailable" stays attached and receives the document
    // once another peer uploads it.
    let (mut raw, server_peer) = RawPeer::joined(&server.ws_url(), "watcher").await.unwrap();
    let mut empty = Automerge::new();
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
    match raw.recv().await.unwrap() {
        Message::DocUnavailable { document_id, .. } => assert_eq!(document_id, id),
        other => panic!("expected doc-unavailable, got {other:?}"),
    }

    let bob = connect(&server, "bob").await;
    let uploaded = bob.create_with_id(id, board());
    within("upload", uploaded.wait_synced()).await.unwrap();
    match raw.recv().await.unwrap() {
        Message::Sync {
            document_id, data, ..
        } => {
            assert_eq!(document_id, id);
            let message = automerge::sync::Message::decode(&data).unwrap();
            automerge::sync::SyncDoc::receive_sync_message(&mut empty, &mut state, message)
                .unwrap();
            assert_eq!(empty.get_heads(), uploaded.heads());
        }
        other => panic!("expected the document, got {other:?}"),
    }
}

#[tokio::test]
async fn ephemeral_messages_reach_other_peers_once() {
    let server = TestServer::start().await;
    let alice = connect(&server, "alice").await;
    let bob = connect(&server, "bob").await;
    let carol = connect(&server, "carol").await;
    let a = alice.create(board());
    within("upload", a.wait_synced()).await.unwrap();
    within("bob find", bob.find(a.id())).await.unwrap();
    within("carol find", carol.find(a.id())).await.unwrap();
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
    let first = connect(&server, "phone").await;
    let doc = first.create(board());
    within("upload", doc.wait_synced()).await.unwrap();
    let offline_copy = doc.fork();

    let second = connect(&server, "phone").await;
    let closed = within("old connection closed", first.closed()).await;
    assert!(
        closed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("replaced")),
        "{closed:?}"
    );
    // The new connection syncs from a fresh state.
    let again = second.create_with_id(doc.id(), offline_copy);
    add_note(&again, "n1", "after reconnect");
    within("synced after reconnect", again.wait_synced())
        .await
        .unwrap();
    let other = connect(&server, "projector").await;
    let seen = within("find", other.find(doc.id())).await.unwrap();
    within("note arrives", seen.wait_until(|d| note(d, "n1").is_some()))
        .await
        .unwrap();
}

#[tokio::test]
async fn offline_edits_merge_after_reconnecting() {
    let server = TestServer::start().await;
    let phone = connect(&server, "phone").await;
    let projector = connect(&server, "projector").await;
    let doc = phone.create(board());
    within("upload", doc.wait_synced()).await.unwrap();
    let board = within("find", projector.find(doc.id())).await.unwrap();

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
    add_note(&board, "projector-1", "pinned by the facilitator");

    let phone = connect(&server, "phone").await;
    let back = phone.create_with_id(doc.id(), offline);
    within("phone merged", back.wait_until(|d| note_count(d) == 3))
        .await
        .unwrap();
    within("projector merged", board.wait_until(|d| note_count(d) == 3))
        .await
        .unwrap();
    within("phone synced", back.wait_synced()).await.unwrap();
    within("projector synced", board.wait_synced())
        .await
        .unwrap();
    assert_eq!(back.heads(), board.heads());
}

#[tokio::test]
async fn idle_documents_are_unloaded_and_reloaded_on_demand() {
    let server = TestServer::start_with(|config| {
        config.idle_unload = Duration::from_millis(200);
    })
    .await;
    let health = || async {
        let body = reqwest_health(&server).await;
        body["documentsLoaded"].as_u64().unwrap()
    };
    let alice = connect(&server, "alice").await;
    let doc = alice.create(board());
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
    let bob = connect(&server, "bob").await;
    let again = within("find after unload", bob.find(doc.id()))
        .await
        .unwrap();
    assert_eq!(again.heads(), doc.heads());
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
