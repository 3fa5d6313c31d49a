//! Bad input ends only the sender's connection, with an `error` message that says why; every
//! other connection and every stored document carries on untouched. Every peer here holds a
//! valid token of the lab; a connection without one is refused before the upgrade.

use std::time::Duration;

use ciborium::Value;
use labboard_protocol::client::{Client, DocHandle};
use labboard_protocol::{encode, Message, PeerId};
use labboard_tests::{add_note, join, note, within, Lab, RawPeer, TestServer};
use tokio_tungstenite::tungstenite;

/// A sync URL with a fresh observer token of `lab` for `name`.
async fn url(server: &TestServer, lab: &Lab, name: &str) -> String {
    let token = server.join(&lab.join_code, name).await;
    server.sync_url(&token)
}

/// A lab with a phone that synced the board before the bad peer arrived.
struct Bystander {
    lab: Lab,
    client: Client,
    doc: DocHandle,
}

impl Bystander {
    async fn new(server: &TestServer) -> Self {
        let lab = server.create_lab("Making ten").await;
        let client = within(
            "bystander connects",
            Client::connect(
                &url(server, &lab, "bystander").await,
                PeerId::from("bystander"),
            ),
        )
        .await
        .unwrap();
        let doc = within("bystander finds the board", client.find(lab.doc_id))
            .await
            .unwrap();
        add_note(&doc, "bystander-before", "before");
        within("bystander upload", doc.wait_synced()).await.unwrap();
        Self { lab, client, doc }
    }

    /// A sync URL for a (bad) peer in the bystander's lab.
    async fn url(&self, server: &TestServer, name: &str) -> String {
        url(server, &self.lab, name).await
    }

    /// The bystander still syncs, and the stored document has everything it wrote.
    async fn assert_undisturbed(&self, server: &TestServer) {
        add_note(&self.doc, "bystander-after", "after");
        within("bystander still syncs", self.doc.wait_synced())
            .await
            .expect("bystander connection survived");
        let fresh = within(
            "fresh client",
            Client::connect(&self.url(server, "checker").await, PeerId::from("checker")),
        )
        .await
        .unwrap();
        let copy = within("fetch stored document", fresh.find(self.doc.id()))
            .await
            .unwrap();
        within(
            "latest state",
            copy.wait_until(|d| note(d, "bystander-after").as_deref() == Some("after")),
        )
        .await
        .unwrap();
        assert_eq!(copy.heads(), self.doc.heads());
        fresh.close().await;
        let _ = &self.client;
    }
}

/// A lab for tests without a bystander.
async fn new_lab(server: &TestServer) -> Lab {
    server.create_lab("Making ten").await
}

async fn refused(raw: &mut RawPeer, expected: &str) {
    let closed = raw.closed().await;
    let Some(error) = closed.error.clone() else {
        panic!("no error message; {closed:?}");
    };
    assert!(
        error.contains(expected),
        "error `{error}` does not mention `{expected}`"
    );
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (Value::Text((*k).into()), v.clone()))
            .collect(),
    )
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[tokio::test]
async fn sync_without_a_valid_token_is_refused_before_the_upgrade() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let missing = server.ws_url();
    let empty = format!("{missing}?token=");
    let wrong = server.sync_url("not-a-token-of-this-server");
    for url in [&missing, &empty, &wrong] {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{url}");
            }
            Ok(_) => panic!("{url}: upgraded without a valid token"),
            Err(other) => panic!("{url}: expected an HTTP 401 response, got {other}"),
        }
    }
    // The refusal says why, as every API error does.
    for (path, expected) in [
        ("/sync", "missing token"),
        (
            "/sync?token=not-a-token-of-this-server",
            "invalid or expired token",
        ),
    ] {
        let response = server.http("GET", path, None, None).await;
        assert_eq!(response.status, 401, "{path}: {}", response.body);
        let error = response.error();
        assert!(error.contains(expected), "{path}: `{error}`");
    }
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn a_token_of_another_lab_than_the_address_names_is_refused() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let other = server.create_lab("Another lab").await;
    let token = server.join(&other.join_code, "Ana").await;
    let crossed = labboard_tests::lab_sync_url(server.addr, &bystander.lab.lab_id, &token);
    match tokio_tungstenite::connect_async(crossed.as_str()).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Ok(_) => panic!("upgraded with a token of another lab than the address names"),
        Err(other) => panic!("expected an HTTP 403 response, got {other}"),
    }
    let path = format!("/sync?lab={}&token={token}", bystander.lab.lab_id);
    let response = server.http("GET", &path, None, None).await;
    assert_eq!(response.status, 403, "{}", response.body);
    assert!(
        response.error().contains("another lab"),
        "{}",
        response.body
    );
    // Named right, the same token opens the other lab's board.
    let named = labboard_tests::lab_sync_url(server.addr, &other.lab_id, &token);
    let client = within("connect", Client::connect(&named, PeerId::from("ana")))
        .await
        .unwrap();
    within("find the board", client.find(other.doc_id))
        .await
        .unwrap();
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn malformed_cbor() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let (mut raw, _) = RawPeer::joined(&bystander.url(&server, "bad").await, "bad")
        .await
        .unwrap();
    raw.send_bytes(vec![0xff, 0xfe, 0xfd]).await.unwrap();
    refused(&mut raw, "not valid CBOR").await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn unknown_message_type() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let (mut raw, _) = RawPeer::joined(&bystander.url(&server, "bad").await, "bad")
        .await
        .unwrap();
    raw.send_bytes(cbor(&map(&[
        ("type", text("teleport")),
        ("senderId", text("bad")),
    ])))
    .await
    .unwrap();
    refused(&mut raw, "unknown message type `teleport`").await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn message_before_join() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let mut raw = RawPeer::connect(&bystander.url(&server, "bad").await)
        .await
        .unwrap();
    raw.send(&Message::Sync {
        sender_id: PeerId::from("bad"),
        target_id: PeerId::from("server"),
        document_id: bystander.doc.id(),
        data: vec![0x42, 0, 0, 1, 0, 0, 0, 2, 2, 0x84],
    })
    .await
    .unwrap();
    refused(&mut raw, "expected a join message").await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn unsupported_protocol_version() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let mut raw = RawPeer::connect(&bystander.url(&server, "bad").await)
        .await
        .unwrap();
    raw.send(&Message::Join {
        sender_id: PeerId::from("future"),
        peer_metadata: None,
        supported_protocol_versions: Some(vec!["2".into()]),
    })
    .await
    .unwrap();
    refused(&mut raw, "unsupported protocol version").await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn join_without_versions_is_accepted_like_the_js_server_does() {
    let server = TestServer::start().await;
    let lab = new_lab(&server).await;
    let mut raw = RawPeer::connect(&url(&server, &lab, "raw").await)
        .await
        .unwrap();
    raw.send(&Message::Join {
        sender_id: PeerId::from("old"),
        peer_metadata: None,
        supported_protocol_versions: None,
    })
    .await
    .unwrap();
    match raw.recv().await.unwrap() {
        Message::Peer {
            selected_protocol_version,
            target_id,
            peer_metadata,
            ..
        } => {
            assert_eq!(selected_protocol_version, "1");
            assert_eq!(target_id, PeerId::from("old"));
            let metadata = peer_metadata.expect("server metadata");
            assert_eq!(metadata.is_ephemeral, Some(false));
            assert!(metadata.storage_id.is_some());
        }
        other => panic!("expected peer, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_document_id() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let (mut raw, server_peer) = RawPeer::joined(&bystander.url(&server, "bad").await, "bad")
        .await
        .unwrap();
    raw.send_bytes(cbor(&map(&[
        ("type", text("sync")),
        ("senderId", text("bad")),
        ("targetId", text(server_peer.as_str())),
        // The last character is changed: the checksum no longer matches.
        ("documentId", text("148vjpuxLmPtrT3kP4TEueSfUba")),
        (
            "data",
            Value::Bytes(vec![0x42, 0, 0, 1, 0, 0, 0, 2, 2, 0x84]),
        ),
    ])))
    .await
    .unwrap();
    refused(
        &mut raw,
        "invalid document id `148vjpuxLmPtrT3kP4TEueSfUba`",
    )
    .await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn undecodable_sync_bytes() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let (mut raw, server_peer) = RawPeer::joined(&bystander.url(&server, "bad").await, "bad")
        .await
        .unwrap();
    // Garbage sent for the bystander's own document must not reach it.
    raw.send(&Message::Sync {
        sender_id: PeerId::from("bad"),
        target_id: server_peer,
        document_id: bystander.doc.id(),
        data: vec![0x42, 0xff, 0xff, 0xff, 0x07],
    })
    .await
    .unwrap();
    refused(&mut raw, "undecodable sync data").await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn empty_sync_data() {
    let server = TestServer::start().await;
    let lab = new_lab(&server).await;
    let (mut raw, server_peer) = RawPeer::joined(&url(&server, &lab, "bad").await, "bad")
        .await
        .unwrap();
    raw.send(&Message::Request {
        sender_id: PeerId::from("bad"),
        target_id: server_peer,
        // The lab's own board: a document outside the lab is answered `doc-unavailable`
        // before its data is looked at.
        document_id: lab.doc_id,
        data: Vec::new(),
    })
    .await
    .unwrap();
    refused(&mut raw, "empty sync data").await;
}

#[tokio::test]
async fn frame_over_the_size_limit() {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 64 * 1024).await;
    let bystander = Bystander::new(&server).await;
    let (mut raw, server_peer) = RawPeer::joined(&bystander.url(&server, "big").await, "big")
        .await
        .unwrap();
    raw.send(&Message::Sync {
        sender_id: PeerId::from("big"),
        target_id: server_peer,
        document_id: bystander.doc.id(),
        data: vec![0x42; 100 * 1024],
    })
    .await
    .unwrap();
    refused(&mut raw, "larger than the server's limit of 65536 bytes").await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn text_frames() {
    let server = TestServer::start().await;
    let lab = new_lab(&server).await;
    let (mut raw, _) = RawPeer::joined(&url(&server, &lab, "texty").await, "texty")
        .await
        .unwrap();
    raw.send_text("{\"type\":\"sync\"}").await.unwrap();
    refused(&mut raw, "text frames are not part of the protocol").await;
}

#[tokio::test]
async fn sender_id_of_another_peer() {
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let (mut raw, server_peer) =
        RawPeer::joined(&bystander.url(&server, "mallory").await, "mallory")
            .await
            .unwrap();
    raw.send(&Message::Request {
        sender_id: PeerId::from("bystander"),
        target_id: server_peer,
        document_id: bystander.doc.id(),
        data: vec![0x42, 0, 0, 1, 0, 0, 0, 2, 2, 0x84],
    })
    .await
    .unwrap();
    refused(
        &mut raw,
        "peer ID mismatch: expected mallory, received bystander",
    )
    .await;
    bystander.assert_undisturbed(&server).await;
}

#[tokio::test]
async fn second_join() {
    let server = TestServer::start().await;
    let lab = new_lab(&server).await;
    let (mut raw, _) = RawPeer::joined(&url(&server, &lab, "twice").await, "twice")
        .await
        .unwrap();
    raw.send(&join("twice")).await.unwrap();
    refused(&mut raw, "unexpected join or peer message").await;
}

#[tokio::test]
async fn silence_after_connecting_times_out() {
    let server = TestServer::start_with(|config| {
        config.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let lab = new_lab(&server).await;
    let mut raw = RawPeer::connect(&url(&server, &lab, "raw").await)
        .await
        .unwrap();
    refused(&mut raw, "expected a join message within").await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let server = TestServer::start_with(|config| {
        config.ping_interval = Duration::from_millis(100);
        config.peer_timeout = Duration::from_millis(400);
    })
    .await;
    let lab = new_lab(&server).await;
    // A raw TCP peer that completes the upgrade and the join, then never reads or writes again:
    // its pongs never come, as with a phone whose screen locked.
    let (raw, _) = RawPeer::joined(&url(&server, &lab, "sleepy").await, "sleepy")
        .await
        .unwrap();
    let stream = raw.socket.into_inner();
    within("server drops the silent peer", async {
        use tokio::io::AsyncReadExt;
        let mut stream = stream;
        let mut buf = [0u8; 1024];
        // Pings arrive and are never answered; the server then closes the TCP connection.
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[tokio::test]
async fn bad_input_never_reaches_storage() {
    // Garbage sync data for a stored document is refused before the document actor sees it:
    // after a restart the document has exactly the bystander's changes.
    let server = TestServer::start().await;
    let bystander = Bystander::new(&server).await;
    let heads = bystander.doc.heads();
    let (mut raw, server_peer) = RawPeer::joined(&bystander.url(&server, "bad").await, "bad")
        .await
        .unwrap();
    raw.send_bytes(encode(&Message::Sync {
        sender_id: PeerId::from("bad"),
        target_id: server_peer,
        document_id: bystander.doc.id(),
        data: vec![0x43, 0x01, 0x00],
    }))
    .await
    .unwrap();
    refused(&mut raw, "undecodable sync data").await;
    bystander.client.close().await;
    let id = bystander.doc.id();
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let after = url(&server, &bystander.lab, "after").await;
    let client = Client::connect(&after, PeerId::from("after"))
        .await
        .unwrap();
    let doc = within("find after restart", client.find(id)).await.unwrap();
    assert_eq!(doc.heads(), heads);
}
