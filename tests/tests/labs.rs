//! Labs end to end: an organizer creates a lab, phones join it with its code, the facilitator
//! runs it, and nothing reaches beyond the lab a token was issued for. Real server, real SQLite
//! file, the official JS client and the Rust client.

use std::net::SocketAddr;
use std::time::Duration;

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use labboard_protocol::client::{Client, ClientError};
use labboard_protocol::{Message, PeerId};
use labboard_tests::js::{ensure_installed, JsPeer};
use labboard_tests::{
    add_note, assert_refused, http_raw, lab_from_created, note, photo_png, read_string, sha256_hex,
    within, HttpResponse, Lab, RawPeer, TestServer, TEST_ORGANIZER_TOKEN,
};
use serde_json::{json, Value};

/// Characters a join code may use: no 0/O, no 1/I/L (the rule, not the server's constant).
const CODE_ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Token lifetime of the expiry test: long enough to join and connect on a loaded machine,
/// short enough that waiting for it is cheap.
const SHORT_TOKEN_TTL: Duration = Duration::from_millis(1500);

/// Pause between two polls of a condition that has no event to wait on (token expiry).
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Creates a lab from a JSON body as the organizer; panics with the server's words if refused.
async fn create(server: &TestServer, body: &Value) -> (Lab, Value) {
    let response = server
        .http(
            "POST",
            "/api/labs",
            Some(TEST_ORGANIZER_TOKEN),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(response.status, 201, "create lab: {}", response.body);
    let json = response.json();
    let lab = lab_from_created(&json);
    (lab, json)
}

/// `POST /api/labs/{id}/facilitate`, answered as is.
async fn try_facilitate(server: &TestServer, lab_id: &str, key: &str, name: &str) -> HttpResponse {
    let body = json!({ "key": key, "name": name }).to_string();
    let path = format!("/api/labs/{lab_id}/facilitate");
    server.http("POST", &path, None, Some(&body)).await
}

async fn rotate(server: &TestServer, lab_id: &str, auth: Option<&str>) -> HttpResponse {
    let path = format!("/api/labs/{lab_id}/join-code");
    server.http("POST", &path, auth, None).await
}

async fn delete(server: &TestServer, lab_id: &str, auth: Option<&str>) -> HttpResponse {
    let path = format!("/api/labs/{lab_id}");
    server.http("DELETE", &path, auth, None).await
}

/// The status of a WebSocket-less `GET /sync?token=…`: 401 if the token is refused, another
/// (upgrade-related) status if it was accepted.
async fn sync_status(server: &TestServer, token: &str) -> u16 {
    let path = format!("/sync?token={token}");
    server.http("GET", &path, None, None).await.status
}

/// One request with one extra header line, for an `Authorization` that is not `Bearer`.
async fn http_with_header(
    addr: SocketAddr,
    method: &str,
    path: &str,
    header: &str,
    body: &str,
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{header}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let raw = within("HTTP response", async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    })
    .await;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    HttpResponse {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
        bytes: body.as_bytes().to_vec(),
    }
}

async fn js_peer(url: &str, name: &str) -> JsPeer {
    ensure_installed().expect("JS test dependencies");
    let mut peer = JsPeer::spawn(url, name).await.expect("node peer starts");
    peer.wait_connected().await.expect("node peer joins");
    peer
}

/// The string at `path` (map keys from the root), whether scalar or collaborative text.
fn scalar_or_text(doc: &Automerge, path: &[&str]) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut obj = ROOT;
    for key in parents {
        obj = doc.get(&obj, *key).ok()??.1;
    }
    read_string(doc, &obj, *last)
}

/// The database file and its write-ahead log, as bytes: what someone with the disk could read.
struct DbFiles(Vec<(&'static str, Vec<u8>)>);

impl DbFiles {
    fn read(dir: &std::path::Path) -> Self {
        let files = ["labboard.db", "labboard.db-wal"]
            .into_iter()
            .filter_map(|name| Some((name, std::fs::read(dir.join(name)).ok()?)))
            .collect::<Vec<_>>();
        assert!(
            files.iter().any(|(name, _)| *name == "labboard.db"),
            "no database file in {}",
            dir.display()
        );
        Self(files)
    }

    /// "<what> in <file>" for each named text found in a file.
    fn find(&self, texts: &[(&str, &str)]) -> Vec<String> {
        let mut found = Vec::new();
        for (what, text) in texts {
            for (name, bytes) in &self.0 {
                if bytes.windows(text.len()).any(|w| w == text.as_bytes()) {
                    found.push(format!("{what} in {name}"));
                }
            }
        }
        found
    }

    /// The named texts that are in no file.
    fn missing<'a>(&self, texts: &[(&'a str, &str)]) -> Vec<&'a str> {
        texts
            .iter()
            .filter(|entry| self.find(&[**entry]).is_empty())
            .map(|(what, _)| *what)
            .collect()
    }
}

#[tokio::test]
async fn a_joined_js_client_sees_the_board_and_syncs_with_the_facilitator() {
    let server = TestServer::start().await;
    let (lab, created) = create(
        &server,
        &json!({
            "title": "Making ten", "school": "Hillside", "grade": "2", "date": "2026-11-23",
        }),
    )
    .await;
    assert!(!lab.lab_id.is_empty() && !lab.facilitator_key.is_empty());
    assert!(lab.doc_url.starts_with("automerge:"), "{created}");
    assert_eq!(lab.join_code.len(), 6, "{created}");
    assert!(
        lab.join_code.chars().all(|c| CODE_ALPHABET.contains(c)),
        "join code {} uses look-alike characters",
        lab.join_code
    );
    assert!(
        lab.join_url.ends_with(&format!("/j/{}", lab.join_code)),
        "{created}"
    );

    // Codes are typed on phones: lower case works.
    let joined = server.try_join(&lab.join_code.to_lowercase(), "Ana").await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let access = joined.json();
    assert_eq!(access["role"], "observer");
    assert_eq!(access["labId"], lab.lab_id.as_str());
    assert_eq!(access["docUrl"], lab.doc_url.as_str());
    assert_eq!(access["title"], "Making ten");
    let token = access["token"].as_str().expect("token").to_owned();

    let mut js = js_peer(&server.sync_url(&token), "js-ana").await;
    let board = js.find(&lab.doc_url).await.expect("JS finds the lab board");
    assert_eq!(board["schemaVersion"], 3, "{board}");
    assert_eq!(board["lab"]["title"], "Making ten", "{board}");
    assert_eq!(board["lab"]["date"], "2026-11-23", "{board}");
    assert!(
        board["categories"]
            .as_object()
            .is_some_and(|c| c.contains_key("student-thinking")),
        "{board}"
    );
    assert_eq!(board["notes"], json!({}), "{board}");

    let signed_in = try_facilitate(&server, &lab.lab_id, &lab.facilitator_key, "Ms. F").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.json()["role"], "facilitator");
    let facilitator = signed_in.json()["token"].as_str().unwrap().to_owned();
    let (_rust, doc) = server.attach(&facilitator, "rust-facilitator", &lab).await;
    assert_eq!(
        doc.with_doc(|d| scalar_or_text(d, &["lab", "title"])),
        Some("Making ten".to_owned())
    );

    // JS -> Rust.
    js.set_in(
        &lab.doc_url,
        &["notes"],
        "question",
        json!("How did T. make ten?"),
    )
    .await
    .unwrap();
    within(
        "the facilitator's client sees the JS change",
        doc.wait_until(|d| note(d, "question").as_deref() == Some("How did T. make ten?")),
    )
    .await
    .unwrap();

    // Rust -> JS.
    doc.change(|tx| tx.put(ROOT, "phase", "launch").unwrap());
    js.wait_for(&lab.doc_url, "phase", json!("launch"))
        .await
        .expect("JS sees the facilitator's change");
    js.exit().await.unwrap();
}

#[tokio::test]
async fn the_organizer_lists_labs_without_their_secrets() {
    let server = TestServer::start().await;
    let (first, _) = create(
        &server,
        &json!({ "title": "Fractions on a line", "school": "Oakwood", "date": "2026-03-02" }),
    )
    .await;
    let (second, _) = create(&server, &json!({ "title": "Area models" })).await;

    let listed = server
        .http("GET", "/api/labs", Some(TEST_ORGANIZER_TOKEN), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let labs = listed.json();
    let labs = labs.as_array().expect("a JSON array");
    assert_eq!(labs.len(), 2, "{}", listed.body);
    let entry = labs
        .iter()
        .find(|l| l["labId"] == first.lab_id.as_str())
        .expect("the first lab is listed");
    assert_eq!(entry["title"], "Fractions on a line");
    assert_eq!(entry["school"], "Oakwood");
    assert_eq!(entry["date"], "2026-03-02");
    assert!(
        entry["createdAt"].as_i64().is_some_and(|t| t > 0),
        "{entry}"
    );
    assert!(labs.iter().any(|l| l["labId"] == second.lab_id.as_str()));
    for lab in [&first, &second] {
        assert!(
            !listed.body.contains(&lab.facilitator_key),
            "{}",
            listed.body
        );
        assert!(!listed.body.contains(&lab.join_code), "{}", listed.body);
    }
    for entry in labs {
        assert!(entry.get("facilitatorKey").is_none(), "{entry}");
        assert!(entry.get("joinCode").is_none(), "{entry}");
    }

    let observer = server.join(&first.join_code, "Ana").await;
    assert_refused(
        &server.http("GET", "/api/labs", Some(&observer), None).await,
        401,
        "wrong organizer token",
    );
}

#[tokio::test]
async fn a_token_of_one_lab_cannot_reach_another_labs_board() {
    let server = TestServer::start().await;
    let lab_a = server.create_lab("Lab A").await;
    let lab_b = server.create_lab("Lab B").await;
    let token_a = server.join(&lab_a.join_code, "Ana").await;

    let (mut raw, server_peer) = RawPeer::joined(&server.sync_url(&token_a), "x")
        .await
        .unwrap();
    let want = Automerge::new()
        .generate_sync_message(&mut automerge::sync::State::new())
        .expect("a first sync message")
        .encode();
    let request = |document_id| Message::Request {
        sender_id: PeerId::from("x"),
        target_id: server_peer.clone(),
        document_id,
        data: want.clone(),
    };
    raw.send(&request(lab_b.doc_id)).await.unwrap();
    match raw.recv().await.unwrap() {
        Message::DocUnavailable { document_id, .. } => assert_eq!(document_id, lab_b.doc_id),
        other => panic!("expected doc-unavailable for lab B's board, got {other:?}"),
    }
    raw.send(&Message::Sync {
        sender_id: PeerId::from("x"),
        target_id: server_peer.clone(),
        document_id: lab_b.doc_id,
        data: want.clone(),
    })
    .await
    .unwrap();
    match raw.recv().await.unwrap() {
        Message::DocUnavailable { document_id, .. } => assert_eq!(document_id, lab_b.doc_id),
        other => panic!("expected doc-unavailable for a sync of lab B's board, got {other:?}"),
    }
    // The connection is still open and still serves its own lab.
    raw.send(&request(lab_a.doc_id)).await.unwrap();
    match raw.recv().await.unwrap() {
        Message::Sync {
            document_id, data, ..
        } => {
            assert_eq!(document_id, lab_a.doc_id);
            assert!(!data.is_empty());
        }
        other => panic!("expected sync of lab A's board, got {other:?}"),
    }

    // The Rust client is told the same.
    let rust = within(
        "rust client connects",
        Client::connect(&server.sync_url(&token_a), PeerId::from("rust-a")),
    )
    .await
    .unwrap();
    let refused = within("rust find of lab B", rust.find(lab_b.doc_id)).await;
    assert!(
        matches!(refused, Err(ClientError::Unavailable(id)) if id == lab_b.doc_id),
        "{refused:?}"
    );

    // And the official client never gets the document.
    let mut js = js_peer(&server.sync_url(&token_a), "js-a").await;
    let err = js
        .find(&lab_b.doc_url)
        .await
        .expect_err("lab B's board must not resolve for a token of lab A");
    assert!(format!("{err:#}").contains("unavailable"), "{err:#}");
    let own = js.find(&lab_a.doc_url).await.expect("its own board");
    assert_eq!(own["lab"]["title"], "Lab A");
    js.exit().await.unwrap();
}

#[tokio::test]
async fn rotating_the_join_code_retires_the_old_one_at_once() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Place value").await;
    let other = server.create_lab("Other lab").await;
    let facilitator = server.facilitate(&lab).await;
    let observer = server.join(&lab.join_code, "Ana").await;
    let other_facilitator = server.facilitate(&other).await;

    let rotated = rotate(&server, &lab.lab_id, Some(&facilitator)).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let code = rotated.json()["joinCode"].as_str().unwrap().to_owned();
    assert_ne!(code, lab.join_code);
    assert!(code.len() == 6 && code.chars().all(|c| CODE_ALPHABET.contains(c)));
    assert!(rotated.json()["joinUrl"]
        .as_str()
        .is_some_and(|url| url.ends_with(&format!("/j/{code}"))));
    assert_refused(
        &server.try_join(&lab.join_code, "Ben").await,
        404,
        "join code",
    );
    let joined = server.try_join(&code, "Ben").await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert_eq!(joined.json()["labId"], lab.lab_id.as_str());

    // The organizer may rotate too.
    let by_organizer = rotate(&server, &lab.lab_id, Some(TEST_ORGANIZER_TOKEN)).await;
    assert_eq!(by_organizer.status, 200, "{}", by_organizer.body);
    let newest = by_organizer.json()["joinCode"].as_str().unwrap().to_owned();
    assert_refused(&server.try_join(&code, "Cy").await, 404, "join code");
    assert_eq!(server.try_join(&newest, "Cy").await.status, 200);

    // Nobody else may.
    assert_refused(
        &rotate(&server, &lab.lab_id, Some(&observer)).await,
        403,
        "only the lab's facilitator",
    );
    assert_refused(
        &rotate(&server, &lab.lab_id, Some(&other_facilitator)).await,
        404,
        "no such lab",
    );
    assert_refused(
        &rotate(&server, &lab.lab_id, None).await,
        401,
        "Authorization",
    );
    assert_refused(
        &rotate(&server, &lab.lab_id, Some("not-a-token")).await,
        401,
        "invalid or expired token",
    );
    // None of the refusals changed the code.
    assert_eq!(server.try_join(&newest, "Dee").await.status, 200);
    // The other lab is untouched.
    assert_eq!(server.try_join(&other.join_code, "Eve").await.status, 200);
}

#[tokio::test]
async fn unknown_codes_are_404_and_the_eleventh_failure_in_a_minute_is_429() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Skip counting").await;
    // A well-formed code no lab has (the server's alphabet, but not this lab's code).
    let unknown = if lab.join_code == "ZZZZZZ" {
        "YYYYYY"
    } else {
        "ZZZZZZ"
    };
    for attempt in 1..=10 {
        let code = if attempt == 1 { "ABC" } else { unknown };
        let response = server.try_join(code, "Mallory").await;
        assert_eq!(response.status, 404, "attempt {attempt}: {}", response.body);
        assert!(response.error().contains("no lab has this join code"));
    }
    let limited = server.try_join(unknown, "Mallory").await;
    assert_refused(&limited, 429, "too many failed attempts");
    let wait: u64 = limited
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    // While limited, even the right code is refused: guessing gains nothing.
    assert_refused(
        &server.try_join(&lab.join_code, "Mallory").await,
        429,
        "too many failed attempts",
    );
    // Facilitator sign-in has its own limiter and still works.
    assert_eq!(
        try_facilitate(&server, &lab.lab_id, &lab.facilitator_key, "F")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn wrong_facilitator_keys_are_403_and_the_eleventh_in_a_minute_is_429() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Number talks").await;
    let other = server.create_lab("Other lab").await;
    // Sloppy typing of the right key works.
    let sloppy = lab.facilitator_key.replace('-', " ").to_lowercase();
    let signed_in = try_facilitate(&server, &lab.lab_id, &sloppy, "Ms. F").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.json()["role"], "facilitator");

    for attempt in 1..=10 {
        // Another lab's key is as wrong as any other.
        let response = try_facilitate(&server, &lab.lab_id, &other.facilitator_key, "M").await;
        assert_eq!(response.status, 403, "attempt {attempt}: {}", response.body);
        assert!(response.error().contains("wrong facilitator key"));
    }
    let limited = try_facilitate(&server, &lab.lab_id, &lab.facilitator_key, "M").await;
    assert_refused(&limited, 429, "too many failed attempts");
    let wait: u64 = limited
        .header("Retry-After")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    // Joining has its own limiter.
    assert_eq!(server.try_join(&lab.join_code, "Ana").await.status, 200);
}

#[tokio::test]
async fn expired_tokens_are_refused_and_their_sockets_closed() {
    let server = TestServer::start_with(|config| config.token_ttl = SHORT_TOKEN_TTL).await;
    let lab = server.create_lab("Measurement").await;
    let observer = server.join(&lab.join_code, "Ana").await;
    let facilitator = server.facilitate(&lab).await;
    // The token works while it is fresh.
    let (client, _doc) = server.attach(&observer, "rust-ana", &lab).await;

    let closed = within("the server closes the expired socket", client.closed()).await;
    let error = closed.error.clone().unwrap_or_default();
    assert!(error.contains("expired"), "{closed}");

    within("the expired token is refused on /sync", async {
        while sync_status(&server, &observer).await != 401 {
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await;
    let refused = server
        .http("GET", &format!("/sync?token={observer}"), None, None)
        .await;
    assert_refused(&refused, 401, "invalid or expired token");
    assert_refused(
        &rotate(&server, &lab.lab_id, Some(&facilitator)).await,
        401,
        "invalid or expired token",
    );

    // Joining again is the way back in.
    let fresh = server.join(&lab.join_code, "Ana").await;
    assert_ne!(sync_status(&server, &fresh).await, 401);
}

#[tokio::test]
async fn a_deleted_lab_leaves_nothing_behind() {
    let server = TestServer::start().await;
    // A lab created beforehand must come through the deletion untouched.
    let keep = server.create_lab("Kept lab Quillwort").await;
    let keep_observer = server.join(&keep.join_code, "Keeper").await;
    let keep_facilitator = server.facilitate(&keep).await;
    let (_keep_client, keep_doc) = server.attach(&keep_observer, "keeper", &keep).await;

    let title = "Tessellations Zanzibar Quokka";
    let observer_name = "Observer Xylophia";
    let facilitator_name = "Facilitator Marmaduke";
    let note_text = "Kumquat perihelion strategy";
    let (lab, _) = create(
        &server,
        &json!({ "title": title, "school": "Hillside", "date": "2026-05-04" }),
    )
    .await;
    let observer = server.join(&lab.join_code, observer_name).await;
    let signed_in =
        try_facilitate(&server, &lab.lab_id, &lab.facilitator_key, facilitator_name).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let facilitator = signed_in.json()["token"].as_str().unwrap().to_owned();
    let (observer_client, _) = server.attach(&observer, "observer", &lab).await;
    let (facilitator_client, board) = server.attach(&facilitator, "facilitator", &lab).await;
    // A note as the web client writes one: a single small change.
    board.change(|tx| {
        let (_, notes) = tx.get(ROOT, "notes").unwrap().expect("the board has notes");
        let note = tx.put_object(&notes, "note-1", ObjType::Map).unwrap();
        tx.put(&note, "text", note_text).unwrap();
        tx.put(&note, "category", "student-thinking").unwrap();
        tx.put(&note, "authorName", facilitator_name).unwrap();
    });
    within("the note is stored", board.wait_synced())
        .await
        .unwrap();
    // A photo of student work, stored beside the board: a PNG whose image data is a
    // distinctive text.
    let photo_text = "Photo pixels Quagmire heliotrope abacus";
    let photo = photo_png(photo_text.as_bytes());
    let photo_id = sha256_hex(&photo);
    let photo_path = format!("/api/labs/{}/photos/{photo_id}", lab.lab_id);
    let uploaded = http_raw(
        server.addr,
        "PUT",
        &photo_path,
        Some(&observer),
        Some(&photo),
    )
    .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);

    let doc_id = lab.doc_id.to_string();
    let traces = [
        ("title", title),
        ("lab id", lab.lab_id.as_str()),
        ("document id", doc_id.as_str()),
        ("join code", lab.join_code.as_str()),
        ("observer name", observer_name),
        ("facilitator name", facilitator_name),
        ("note text", note_text),
        ("photo bytes", photo_text),
        ("photo id", photo_id.as_str()),
    ];
    // The check below can only fail if the lab is in the file to begin with.
    let missing = DbFiles::read(server.dir.path()).missing(&traces);
    assert!(missing.is_empty(), "not in the file before: {missing:?}");

    // Only the lab's facilitator (or the organizer) may delete it.
    assert_refused(
        &delete(&server, &lab.lab_id, Some(&observer)).await,
        403,
        "only the lab's facilitator",
    );
    assert_refused(
        &delete(&server, &lab.lab_id, Some(&keep_facilitator)).await,
        404,
        "no such lab",
    );
    let deleted = delete(&server, &lab.lab_id, Some(&facilitator)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // Read at once: the 204 says the lab is gone, so it must be gone from the disk now.
    let after = DbFiles::read(server.dir.path());
    let kept = after.missing(&[("kept lab's title", "Kept lab Quillwort")]);
    assert!(kept.is_empty(), "the scan no longer sees the kept lab");
    let left = after.find(&traces);
    assert!(left.is_empty(), "left in the file after the 204: {left:?}");

    for client in [&observer_client, &facilitator_client] {
        let closed = within("the deleted lab's sockets close", client.closed()).await;
        let error = closed.error.clone().unwrap_or_default();
        assert!(error.contains("deleted"), "{closed}");
    }
    for token in [&observer, &facilitator] {
        assert_refused(
            &server
                .http("GET", &format!("/sync?token={token}"), None, None)
                .await,
            401,
            "invalid or expired token",
        );
    }
    assert_refused(
        &rotate(&server, &lab.lab_id, Some(&facilitator)).await,
        401,
        "invalid or expired token",
    );
    assert_refused(
        &delete(&server, &lab.lab_id, Some(&facilitator)).await,
        401,
        "invalid or expired token",
    );
    assert_refused(
        &delete(&server, &lab.lab_id, Some(TEST_ORGANIZER_TOKEN)).await,
        404,
        "no such lab",
    );
    assert_refused(
        &server.try_join(&lab.join_code, "Late").await,
        404,
        "no lab has this join code",
    );
    assert_refused(
        &server
            .http("GET", &photo_path, Some(TEST_ORGANIZER_TOKEN), None)
            .await,
        404,
        "no such lab",
    );
    let listed = server
        .http("GET", "/api/labs", Some(TEST_ORGANIZER_TOKEN), None)
        .await
        .json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["labId"].as_str())
        .collect();
    assert_eq!(ids, [keep.lab_id.as_str()]);

    // The other lab carries on: its socket syncs, its code joins, its facilitator runs it.
    add_note(&keep_doc, "after-the-deletion", "after the deletion");
    within("the kept lab still syncs", keep_doc.wait_synced())
        .await
        .expect("the kept lab's socket stays open");
    let late = server.join(&keep.join_code, "Late keeper").await;
    let (_late_client, late_doc) = server.attach(&late, "late-keeper", &keep).await;
    within(
        "a new client of the kept lab gets its latest state",
        late_doc
            .wait_until(|d| note(d, "after-the-deletion").as_deref() == Some("after the deletion")),
    )
    .await
    .unwrap();
    assert_eq!(
        rotate(&server, &keep.lab_id, Some(&keep_facilitator))
            .await
            .status,
        200
    );

    // Shutdown writes snapshots of open documents; none of them brings the lab back.
    let dir = server.stop().await;
    let left = DbFiles::read(dir.path()).find(&traces);
    assert!(left.is_empty(), "left in the file after shutdown: {left:?}");
}

#[tokio::test]
async fn wrong_methods_and_plain_gets_of_the_socket_answer_json() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Methods").await;
    let token = server.join(&lab.join_code, "Ana").await;

    // A wrong method on an API route, on a route with a parameter, and on a page.
    for (method, path, allowed) in [
        ("PUT", "/api/labs", "POST"),
        (
            "PATCH",
            &format!("/api/labs/{}/join-code", lab.lab_id),
            "POST",
        ),
        ("DELETE", "/api/join", "POST"),
        ("POST", "/healthz", "GET"),
    ] {
        let response = server
            .http(method, path, Some(TEST_ORGANIZER_TOKEN), None)
            .await;
        assert_refused(&response, 405, "is not allowed");
        let allow = response.header("allow").unwrap_or_default();
        assert!(allow.contains(allowed), "{method} {path}: Allow `{allow}`");
    }
    // A plain GET of the socket with a valid token: refused in JSON, without an upgrade.
    let plain = server
        .http("GET", &format!("/sync?token={token}"), None, None)
        .await;
    assert_eq!(plain.status, 400, "{}", plain.body);
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert!(
        plain.error().contains("not a WebSocket upgrade"),
        "{plain:?}"
    );
}

#[tokio::test]
async fn malformed_requests_get_a_status_and_words_and_others_carry_on() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Bystander lab").await;
    let token = server.join(&lab.join_code, "Bystander").await;
    let (_client, doc) = server.attach(&token, "bystander", &lab).await;
    let organizer = Some(TEST_ORGANIZER_TOKEN);
    let post_labs = |auth: Option<&'static str>, body: &'static str| {
        let server = &server;
        async move { server.http("POST", "/api/labs", auth, Some(body)).await }
    };

    assert_refused(
        &post_labs(organizer, "{\"title\": ").await,
        400,
        "invalid JSON",
    );
    assert_refused(
        &post_labs(organizer, "[\"title\"]").await,
        400,
        "invalid JSON",
    );
    assert_refused(
        &post_labs(organizer, "{\"school\": \"Hillside\"}").await,
        400,
        "`title` is required",
    );
    assert_refused(
        &post_labs(organizer, "{\"title\": \"   \"}").await,
        400,
        "`title` is required",
    );
    assert_refused(
        &post_labs(organizer, "{\"title\": \"T\", \"date\": \"2026-02-30\"}").await,
        400,
        "`date` must be a day written YYYY-MM-DD",
    );
    assert_refused(
        &post_labs(organizer, "{\"title\": \"T\", \"date\": \"30/01/2026\"}").await,
        400,
        "`date` must be a day written YYYY-MM-DD",
    );
    assert_refused(
        &post_labs(organizer, "{\"title\": \"T\", \"room\": \"12\"}").await,
        400,
        "unknown field `room`",
    );
    assert_refused(
        &server.http("POST", "/api/labs", organizer, None).await,
        400,
        "request body is empty",
    );
    let huge = json!({ "title": "x".repeat(17 * 1024) }).to_string();
    assert_refused(
        &http_raw(
            server.addr,
            "POST",
            "/api/labs",
            organizer,
            Some(huge.as_bytes()),
        )
        .await,
        413,
        "larger than 16384 bytes",
    );
    let long_title = json!({ "title": "x".repeat(121) }).to_string();
    assert_refused(
        &server
            .http("POST", "/api/labs", organizer, Some(&long_title))
            .await,
        400,
        "longer than 120 characters",
    );
    assert_refused(
        &post_labs(None, "{\"title\": \"T\"}").await,
        401,
        "missing `Authorization: Bearer <token>` header",
    );
    assert_refused(
        &post_labs(Some("not-the-organizer"), "{\"title\": \"T\"}").await,
        401,
        "wrong organizer token",
    );
    assert_refused(
        &http_with_header(
            server.addr,
            "POST",
            "/api/labs",
            "Authorization: Basic x",
            "{\"title\": \"T\"}",
        )
        .await,
        401,
        "must be `Bearer <token>`",
    );
    // An observer token is no organizer token.
    assert_refused(
        &server
            .http(
                "POST",
                "/api/labs",
                Some(&token),
                Some("{\"title\": \"T\"}"),
            )
            .await,
        401,
        "wrong organizer token",
    );

    let join_code = lab.join_code.clone();
    let join_body = |body: Value| {
        let server = &server;
        async move {
            server
                .http("POST", "/api/join", None, Some(&body.to_string()))
                .await
        }
    };
    assert_refused(
        &join_body(json!({ "code": join_code })).await,
        400,
        "`name` is required",
    );
    assert_refused(
        &join_body(json!({ "code": join_code, "name": "  " })).await,
        400,
        "`name` is required",
    );
    assert_refused(
        &join_body(json!({ "code": join_code, "name": "n".repeat(200) })).await,
        400,
        "`name` must be at most 60 characters",
    );
    assert_refused(
        &server
            .http("POST", "/api/join", None, Some("not json"))
            .await,
        400,
        "invalid JSON",
    );
    assert_refused(
        &server.http("POST", "/api/join", None, None).await,
        400,
        "request body is empty",
    );
    assert_refused(
        &server.http("GET", "/api/nothing-here", None, None).await,
        404,
        "no such API endpoint",
    );
    assert_refused(
        &server
            .http("POST", "/api/labs/x/y/z", organizer, Some("{}"))
            .await,
        404,
        "no such API endpoint",
    );
    assert_refused(
        &server.http("GET", "/sync", None, None).await,
        401,
        "missing token",
    );
    // None of these counted as a failed join: the limiter only counts wrong codes.
    assert_eq!(
        join_body(json!({ "code": join_code, "name": "Ana" }))
            .await
            .status,
        200
    );

    // The server kept serving: the connected client syncs, and labs can still be created.
    add_note(&doc, "still-here", "still here");
    within("the bystander still syncs", doc.wait_synced())
        .await
        .expect("the bystander's socket stayed open");
    let (fresh, _) = create(&server, &json!({ "title": "Created afterwards" })).await;
    assert_eq!(server.try_join(&fresh.join_code, "Ben").await.status, 200);
}
