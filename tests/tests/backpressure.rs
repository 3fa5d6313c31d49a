//! A slow peer must never stall the others.
//!
//! A writer and a projector sync a lab's board through the real server while a third peer joins,
//! receives and acknowledges the board, and then stops reading its socket. The writer keeps adding
//! large notes: first the socket buffers towards the stuck peer fill and its connection task
//! blocks on the write, then its outbox fills, and the document actor, which never waits on a
//! connection, drops it. All along, every note of the writer is acknowledged and reaches the
//! projector. Finally the server closes the stuck peer's connection.

use std::time::Duration;

use automerge::sync::SyncDoc;
use automerge::Automerge;
use labboard::outbox::OUTBOX_CAPACITY;
use labboard_protocol::client::Client;
use labboard_protocol::{Message, PeerId};
use labboard_tests::{add_note, note_count, within, Lab, RawPeer, TestServer};

/// Size of each note's text: large, so that a few hundred notes fill the socket buffers.
const NOTE_BYTES: usize = 32 * 1024;

/// What the connection to a peer that stopped reading absorbs before the server's writes block:
/// the server's send buffer, which Linux autotunes up to the `net.ipv4.tcp_wmem` maximum (4 MiB
/// by default), the stuck peer's receive buffer, which stays near its initial 128 KiB because
/// autotuning grows it only as the application reads, and the WebSocket's own buffers. Doubled
/// for margin (about 4 MiB was measured).
const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Notes after which the stuck peer's socket is surely full but its outbox surely is not.
const SOCKET_FULL_AFTER: usize = SOCKET_BUFFER_BYTES / NOTE_BYTES;

/// Notes the writer adds, one acknowledged change each. Every change is stored in its own batch
/// and relayed as one sync message per peer, so the stuck peer is owed one message per note:
/// enough to fill the socket, then the whole outbox, then some. About 25 MiB in all.
const NOTES: usize = SOCKET_FULL_AFTER + OUTBOX_CAPACITY + 16;

/// How long a write to a peer, or a peer's silence, may last before the server drops it. Far
/// beyond this test, so that the only way the stuck peer can be dropped is its full outbox.
const PEER_TIMEOUT: Duration = Duration::from_secs(600);

/// How often the health endpoint is polled while waiting for the stuck peer to be dropped.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A sync URL with a fresh token of `lab` for `name`.
async fn url(server: &TestServer, lab: &Lab, name: &str) -> String {
    let token = server.join(&lab.join_code, name).await;
    server.sync_url(&token)
}

async fn connect(server: &TestServer, lab: &Lab, name: &str) -> Client {
    within(
        "connect",
        Client::connect(&url(server, lab, name).await, PeerId::from(name)),
    )
    .await
    .expect("client connects")
}

/// `NOTE_BYTES` of text, different for every note.
fn note_text(n: usize) -> String {
    (0..NOTE_BYTES)
        .map(|i| char::from(b'a' + ((i + n) % 26) as u8))
        .collect()
}

/// Open WebSocket connections, from `GET /healthz`.
async fn connections(server: &TestServer) -> u64 {
    let health = server.http("GET", "/healthz", None, None).await.json();
    health["connections"]
        .as_u64()
        .expect("connections is a number")
}

/// Joins as a raw peer, requests the board, applies the server's reply and acknowledges it, the
/// way a phone finishes its first sync. Returns the socket, which the caller then stops reading.
async fn synced_raw_peer(server: &TestServer, lab: &Lab, name: &str) -> (RawPeer, Automerge) {
    let (mut raw, server_peer) = RawPeer::joined(&url(server, lab, name).await, name)
        .await
        .unwrap();
    let mut copy = Automerge::new();
    let mut state = automerge::sync::State::new();
    let request = copy
        .generate_sync_message(&mut state)
        .expect("initial message");
    raw.send(&Message::Request {
        sender_id: PeerId::from(name),
        target_id: server_peer.clone(),
        document_id: lab.doc_id,
        data: request.encode(),
    })
    .await
    .unwrap();
    match raw.recv().await.unwrap() {
        Message::Sync { data, .. } => {
            let message = automerge::sync::Message::decode(&data).unwrap();
            copy.receive_sync_message(&mut state, message).unwrap();
        }
        other => panic!("expected the board, got {other:?}"),
    }
    // Without this acknowledgement the server would know the peer only as empty-handed and send
    // it the whole board again with every change, not just the new note.
    let ack = copy
        .generate_sync_message(&mut state)
        .expect("acknowledgement");
    raw.send(&Message::Sync {
        sender_id: PeerId::from(name),
        target_id: server_peer,
        document_id: lab.doc_id,
        data: ack.encode(),
    })
    .await
    .unwrap();
    (raw, copy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_dropped_without_stalling_the_others() {
    let server = TestServer::start_with(|config| {
        config.peer_timeout = PEER_TIMEOUT;
    })
    .await;
    let lab = server.create_lab("Making ten").await;
    let writer = connect(&server, &lab, "writer").await;
    let doc = within("writer find", writer.find(lab.doc_id))
        .await
        .unwrap();
    let projector = connect(&server, &lab, "projector").await;
    let shown = within("projector find", projector.find(lab.doc_id))
        .await
        .unwrap();
    let (mut stuck, copy) = synced_raw_peer(&server, &lab, "stuck-phone").await;
    assert_eq!(copy.get_heads(), doc.heads());
    assert_eq!(connections(&server).await, 3);

    // From here on the stuck phone reads nothing. Every note is acknowledged by the server: the
    // writer never waits for the stuck peer.
    for n in 0..NOTES {
        add_note(&doc, &format!("n{n}"), &note_text(n));
        within("the server acknowledges a note", doc.wait_synced())
            .await
            .unwrap();
        if n + 1 == SOCKET_FULL_AFTER {
            within(
                "the projector keeps up while the stuck peer's socket is full",
                shown.wait_until(|d| note_count(d) == SOCKET_FULL_AFTER),
            )
            .await
            .unwrap();
            assert_eq!(
                connections(&server).await,
                3,
                "the stuck peer was dropped before its outbox could fill"
            );
        }
    }
    within(
        "the projector receives every note",
        shown.wait_until(|d| note_count(d) == NOTES),
    )
    .await
    .unwrap();
    within("projector synced", shown.wait_synced())
        .await
        .unwrap();
    assert_eq!(shown.heads(), doc.heads());

    within("the server drops the stuck peer", async {
        while connections(&server).await != 2 {
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await;
    // Reading again, the stuck peer finds the end of its connection after what was buffered. The
    // server's `error` usually does not fit into the full socket before it gives up on the
    // farewell; if it made it, it names the reason.
    let closed = stuck.closed().await;
    if let Some(error) = &closed.error {
        assert!(error.contains("too far behind"), "{closed:?}");
    }

    // The others are unaffected.
    add_note(&doc, "after", "still here");
    within(
        "the projector receives a later note",
        shown.wait_until(|d| note_count(d) == NOTES + 1),
    )
    .await
    .unwrap();
}
