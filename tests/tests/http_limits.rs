//! The HTTP limits: a slowloris attack from one address leaves the server usable from others;
//! connections over the total or the per-address cap get a 503 JSON answer before any upgrade;
//! WebSockets hold their place while open; request heads that never finish are cut off.
//!
//! Clients pick their source address among 127.0.0.0/8, which is all loopback on Linux, so one
//! test process can be several clients.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use labboard_protocol::{DocumentId, Message, PeerId};
use labboard_tests::{
    connect_from, ensure_open_file_limit, http_from, within, HttpResponse, RawPeer, TestServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const PHONE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const OTHER_PHONE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const JOINER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));

/// Half-sent requests in the slowloris test: more than the default per-address cap, and more
/// than the 1,024 open files a process commonly gets by default.
const HALF_OPEN_REQUESTS: usize = 2_000;

/// A request head that never ends: the blank line that would finish it is never sent.
const HALF_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: labboard\r\nX-Slow: ";

/// Long enough that no held connection times out while a test runs, however slow the machine.
const HEADER_TIMEOUT_LONGER_THAN_A_TEST: Duration = Duration::from_secs(600);

/// How often a test retries while it waits for the server to notice a closed socket.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Opens a connection from `source` and sends the start of a request that never finishes.
async fn half_open(source: IpAddr, server: &TestServer) -> TcpStream {
    let mut stream = connect_from(source, server.addr)
        .await
        .expect("connect for a half-sent request");
    // A refused connection may already be closed; the attacker does not care.
    let _ = stream.write_all(HALF_REQUEST).await;
    stream
}

/// Joins `lab` from `source` and returns the observer token.
async fn join_from(source: IpAddr, server: &TestServer, code: &str, name: &str) -> String {
    let body = serde_json::json!({ "code": code, "name": name }).to_string();
    let response = http_from(source, server.addr, "POST", "/api/join", None, Some(&body)).await;
    assert_eq!(response.status, 200, "join: {}", response.body);
    response.json()["token"].as_str().expect("token").to_owned()
}

/// Connects from `source`, joins as `peer_id`, asks for `doc` and returns the board the server
/// sends back.
async fn sync_board(
    source: IpAddr,
    url: &str,
    peer_id: &str,
    doc: DocumentId,
) -> (RawPeer, automerge::Automerge) {
    let mut phone = RawPeer::connect_from(source, url)
        .await
        .expect("the phone's WebSocket opens");
    let server_peer = phone.join(peer_id).await.expect("the phone joins");
    let empty = automerge::Automerge::new();
    let mut state = automerge::sync::State::new();
    let request = automerge::sync::SyncDoc::generate_sync_message(&empty, &mut state)
        .expect("an initial sync message");
    phone
        .send(&Message::Request {
            sender_id: PeerId::from(peer_id),
            target_id: server_peer,
            document_id: doc,
            data: request.encode(),
        })
        .await
        .expect("send the request");
    let data = match phone.recv().await.expect("an answer to the request") {
        Message::Sync {
            document_id, data, ..
        } if document_id == doc => data,
        other => panic!("expected the board, got {other:?}"),
    };
    let mut board = automerge::Automerge::new();
    let message = automerge::sync::Message::decode(&data).expect("automerge sync bytes");
    automerge::sync::SyncDoc::receive_sync_message(&mut board, &mut state, message)
        .expect("apply the board");
    (phone, board)
}

/// Asserts the 503 a connection over a cap gets, and that its JSON says `words`.
fn assert_over_cap(response: &HttpResponse, words: &str) {
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.header("retry-after").is_some(), "{response:?}");
    let error = response.error();
    assert!(error.contains(words), "`{error}` does not say `{words}`");
}

/// Sends `GET /healthz` from `source` until the answer is not a 503, and returns it.
async fn healthz_once_admitted(source: IpAddr, server: &TestServer) -> HttpResponse {
    within("the server to give the place back", async {
        loop {
            let response = http_from(source, server.addr, "GET", "/healthz", None, None).await;
            if response.status != 503 {
                return response;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_from_one_address_leaves_others_joining_and_syncing() {
    // The attack's sockets, the server's side of those it admits, and room for the rest.
    ensure_open_file_limit(HALF_OPEN_REQUESTS as u64 + 1_024);
    // The default caps; only the header timeout is longer, so that the attack holds.
    let server = TestServer::start_with(|config| {
        config.header_read_timeout = HEADER_TIMEOUT_LONGER_THAN_A_TEST;
    })
    .await;
    let lab = server.create_lab("Under attack").await;

    let attack = within("2,000 half-sent requests", async {
        let mut attack = Vec::with_capacity(HALF_OPEN_REQUESTS);
        for _ in 0..HALF_OPEN_REQUESTS {
            attack.push(half_open(ATTACKER, &server).await);
        }
        attack
    })
    .await;

    // Another address joins the lab and syncs its board.
    let token = join_from(PHONE, &server, &lab.join_code, "Ana").await;
    let (phone, board) = within(
        "the phone to sync during the attack",
        sync_board(PHONE, &server.sync_url(&token), "phone-ana", lab.doc_id),
    )
    .await;
    assert!(
        automerge::ReadDoc::get(&board, automerge::ROOT, "notes")
            .unwrap()
            .is_some(),
        "the synced board has no notes map"
    );

    // The attacking address is at its cap: it is answered, not left hanging.
    let refused = http_from(ATTACKER, server.addr, "GET", "/healthz", None, None).await;
    assert_over_cap(&refused, "from this address");

    drop(attack);
    drop(phone);
    server.stop().await;
}

#[tokio::test]
async fn over_the_total_cap_a_client_gets_a_503_before_any_upgrade() {
    let server = TestServer::start_with(|config| {
        config.max_connections = 3;
        config.header_read_timeout = HEADER_TIMEOUT_LONGER_THAN_A_TEST;
    })
    .await;
    let lab = server.create_lab("Full").await;
    let token = server.join(&lab.join_code, "Ana").await;

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(half_open(ATTACKER, &server).await);
    }
    let refused = http_from(PHONE, server.addr, "GET", "/healthz", None, None).await;
    assert_over_cap(&refused, "too many open connections");
    match RawPeer::connect_from(PHONE, &server.sync_url(&token)).await {
        Ok(_) => panic!("upgraded over the cap"),
        Err(err) => {
            let status = err
                .downcast_ref::<tokio_tungstenite::tungstenite::Error>()
                .and_then(|err| match err {
                    tokio_tungstenite::tungstenite::Error::Http(response) => {
                        Some(response.status())
                    }
                    _ => None,
                });
            assert_eq!(status.map(|s| s.as_u16()), Some(503), "{err:#}");
        }
    }

    // A place comes back when a held connection closes.
    drop(held.pop());
    let admitted = healthz_once_admitted(PHONE, &server).await;
    assert_eq!(admitted.status, 200, "{}", admitted.body);
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn an_open_websocket_holds_its_place_under_the_per_address_cap() {
    let server = TestServer::start_with(|config| config.max_connections_per_address = 1).await;
    let lab = server.create_lab("One each").await;
    let token = join_from(JOINER, &server, &lab.join_code, "Ana").await;

    let (phone, _board) = within(
        "the phone to sync",
        sync_board(PHONE, &server.sync_url(&token), "phone-ana", lab.doc_id),
    )
    .await;
    // The socket is the address's one place; another address is not affected.
    let refused = http_from(PHONE, server.addr, "GET", "/healthz", None, None).await;
    assert_over_cap(&refused, "from this address");
    let other = http_from(OTHER_PHONE, server.addr, "GET", "/healthz", None, None).await;
    assert_eq!(other.status, 200, "{}", other.body);

    drop(phone);
    let admitted = healthz_once_admitted(PHONE, &server).await;
    assert_eq!(admitted.status, 200, "{}", admitted.body);
    server.stop().await;
}

#[tokio::test]
async fn request_heads_that_never_finish_are_cut_off() {
    let server = TestServer::start_with(|config| {
        config.header_read_timeout = Duration::from_millis(100);
    })
    .await;
    let mut half = half_open(ATTACKER, &server).await;
    let mut silent = connect_from(ATTACKER, server.addr).await.expect("connect");
    for (what, stream) in [("a half-sent head", &mut half), ("nothing", &mut silent)] {
        let mut rest = Vec::new();
        // The server closes (or resets) the connection; either ends the read.
        let _ = within(
            &format!("the server to close a connection that sent {what}"),
            stream.read_to_end(&mut rest),
        )
        .await;
    }
    // The server itself carries on.
    let health = http_from(PHONE, server.addr, "GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    server.stop().await;
}
