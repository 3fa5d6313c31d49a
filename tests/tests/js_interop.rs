//! Interop with the official JavaScript client, `@automerge/automerge-repo` 2.5.6 and its
//! WebSocket client adapter, running in Node against our server.
//!
//! JS clients open the lab's board (`docUrl`) with a token URL, as the web client does after
//! joining. Every JS peer gets a valid token: the Node adapter crashes its process on an HTTP 401
//! upgrade response, so refused connections are tested from Rust (`bad_input.rs`).
//!
//! These are tests of sync, writing keys anywhere on the board, so every peer here signs in as
//! the lab's facilitator; what an observer's client may write is tested in `integrity.rs`.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};
use labboard_protocol::client::Client;
use labboard_protocol::{DocumentId, PeerId};
use labboard_tests::js::{ensure_installed, JsPeer};
use labboard_tests::{read_string, within, Lab, TestServer};
use serde_json::{json, Value};

/// A JS peer signed in to `lab` as its facilitator, connected to the server.
async fn js_peer(server: &TestServer, lab: &Lab, name: &str) -> JsPeer {
    ensure_installed().expect("JS test dependencies");
    let token = server.facilitate(lab).await;
    let mut peer = JsPeer::spawn(&server.sync_url(&token), name)
        .await
        .expect("node peer starts");
    peer.wait_connected().await.expect("node peer joins");
    peer
}

/// The document's heads as the JS peer reports them (hex), sorted.
async fn js_heads(peer: &mut JsPeer, url: &str) -> Vec<String> {
    let got = peer.get(url).await.unwrap();
    let mut heads: Vec<String> = serde_json::from_value(got["heads"].clone()).unwrap();
    heads.sort();
    heads
}

#[tokio::test]
async fn js_clients_and_a_rust_client_share_one_document() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Grade 2 lab").await;
    let url = lab.doc_url.clone();
    let mut alice = js_peer(&server, &lab, "js-alice").await;
    let mut bob = js_peer(&server, &lab, "js-bob").await;

    // Both JS clients fetch the board the server made, with its (Rust-written) text.
    for peer in [&mut alice, &mut bob] {
        let found = peer.find(&url).await.unwrap();
        assert_eq!(found["lab"]["title"], "Grade 2 lab");
        assert_eq!(found["notes"], json!({}));
    }

    // JS -> JS and JS -> Rust: a string (which the JS client stores as collaborative text) and
    // a new list.
    alice.set(&url, "focus", json!("Making ten")).await.unwrap();
    alice
        .push(&url, "log", json!("T. counted by 2s"))
        .await
        .unwrap();
    bob.wait_for(&url, "focus", json!("Making ten"))
        .await
        .unwrap();
    bob.wait_for_length(&url, "log", 1).await.unwrap();

    let token = server.facilitate(&lab).await;
    let rust = Client::connect(&server.sync_url(&token), PeerId::from("rust"))
        .await
        .unwrap();
    let doc = within("rust finds the board", rust.find(lab.doc_id))
        .await
        .unwrap();
    within(
        "rust sees the JS edits",
        doc.wait_until(|d| {
            read_string(d, ROOT, "focus").as_deref() == Some("Making ten")
                && d.get(ROOT, "log")
                    .ok()
                    .flatten()
                    .is_some_and(|(_, list)| d.length(&list) == 1)
        }),
    )
    .await
    .unwrap();
    let log = doc.with_doc(|d| d.get(ROOT, "log").unwrap().unwrap().1);
    assert_eq!(
        doc.with_doc(|d| read_string(d, &log, 0)).as_deref(),
        Some("T. counted by 2s")
    );

    // Rust -> JS.
    doc.change(|tx| tx.put(ROOT, "phase", "lesson 1").unwrap());
    alice
        .wait_for(&url, "phase", json!("lesson 1"))
        .await
        .unwrap();
    bob.wait_for(&url, "phase", json!("lesson 1"))
        .await
        .unwrap();

    // Everyone ends on the same heads.
    within("rust synced", doc.wait_synced()).await.unwrap();
    let mut rust_heads: Vec<String> = doc.heads().iter().map(ToString::to_string).collect();
    rust_heads.sort();
    for peer in [&mut alice, &mut bob] {
        assert_eq!(js_heads(peer, &url).await, rust_heads);
    }
}

#[tokio::test]
async fn a_js_client_that_edits_while_disconnected_resyncs_on_reconnect() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let url = lab.doc_url.clone();
    let mut phone = js_peer(&server, &lab, "js-phone").await;
    let mut projector = js_peer(&server, &lab, "js-projector").await;
    phone.find(&url).await.unwrap();
    projector.find(&url).await.unwrap();
    // A Rust client watches the server's copy, to count the changes it ends up with.
    let token = server.facilitate(&lab).await;
    let checker = Client::connect(&server.sync_url(&token), PeerId::from("checker"))
        .await
        .unwrap();
    let stored = within("the server's copy", checker.find(lab.doc_id))
        .await
        .unwrap();
    let changes_before = stored.with_doc(|d| d.get_changes(&[]).len());

    // Distinct keys: concurrent edits that both survive a merge, so nothing depends on which of
    // two conflicting values wins.
    phone.disconnect().await.unwrap();
    phone
        .set(&url, "offline-1", json!("hallway"))
        .await
        .unwrap();
    phone.set(&url, "offline-2", json!("stairs")).await.unwrap();
    projector
        .set(&url, "projector", json!("pinned"))
        .await
        .unwrap();

    phone.reconnect().await.unwrap();
    let expected = [
        ("offline-1", "hallway"),
        ("offline-2", "stairs"),
        ("projector", "pinned"),
    ];
    let mut views = Vec::new();
    for peer in [&mut projector, &mut phone] {
        let mut view = Value::Null;
        for (key, value) in expected {
            view = peer.wait_for(&url, key, json!(value)).await.unwrap();
        }
        peer.wait_synced(&url).await.unwrap();
        views.push((view, js_heads(peer, &url).await));
    }
    assert_eq!(views[0], views[1]);
    within(
        "the server's copy has every edit",
        stored.wait_until(|d| {
            expected
                .iter()
                .all(|(key, value)| read_string(d, ROOT, *key).as_deref() == Some(*value))
        }),
    )
    .await
    .unwrap();
    within("checker synced", stored.wait_synced())
        .await
        .unwrap();
    let mut stored_heads: Vec<String> = stored.heads().iter().map(ToString::to_string).collect();
    stored_heads.sort();
    assert_eq!(stored_heads, views[0].1);
    // Exactly once: the phone's two offline changes and the projector's one arrived, and the
    // reconnect added nothing else.
    assert_eq!(
        stored.with_doc(|d| d.get_changes(&[]).len()),
        changes_before + 3
    );
}

#[tokio::test]
async fn a_js_find_of_an_unknown_document_is_answered_unavailable() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let other_lab = server.create_lab("Another school").await;
    let mut peer = js_peer(&server, &lab, "js-finder").await;
    let unknown = DocumentId::random().url();
    let err = peer.find(&unknown).await.unwrap_err();
    assert!(err.to_string().contains("unavailable"), "{err}");
    // Another lab's board looks the same from here.
    let err = peer.find(&other_lab.doc_url).await.unwrap_err();
    assert!(err.to_string().contains("unavailable"), "{err}");
    // And the peer's own board is still there.
    let found = peer.find(&lab.doc_url).await.unwrap();
    assert_eq!(found["lab"]["title"], "Making ten");
}

#[tokio::test]
async fn js_ephemeral_messages_are_relayed_without_echo_loops() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let url = lab.doc_url.clone();
    let mut alice = js_peer(&server, &lab, "js-alice").await;
    let mut bob = js_peer(&server, &lab, "js-bob").await;
    alice.find(&url).await.unwrap();
    bob.find(&url).await.unwrap();

    alice
        .broadcast(&url, json!({ "presence": "alice" }))
        .await
        .unwrap();
    let event = bob.next_event().await.unwrap();
    assert_eq!(event["event"], "ephemeral");
    assert_eq!(event["message"]["presence"], "alice");
    // Bob's client re-forwards what it received to the server; the server must drop that echo
    // rather than send it to alice (her own message) or back to bob.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(bob.take_events().is_empty(), "bob received a duplicate");
    assert!(
        alice.take_events().is_empty(),
        "alice received her own message"
    );
}
