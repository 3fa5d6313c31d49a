//! Interop with the official JavaScript client, `@automerge/automerge-repo` 2.5.6 and its
//! WebSocket client adapter, running in Node against our server.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};
use labboard_protocol::client::Client;
use labboard_protocol::{DocumentId, PeerId};
use labboard_tests::js::{ensure_installed, JsPeer};
use labboard_tests::{read_string, within, TestServer};
use serde_json::json;

async fn js_peer(server: &TestServer, name: &str) -> JsPeer {
    ensure_installed().expect("JS test dependencies");
    let mut peer = JsPeer::spawn(&server.ws_url(), name)
        .await
        .expect("node peer starts");
    peer.wait_connected().await.expect("node peer joins");
    peer
}

#[tokio::test]
async fn js_clients_and_a_rust_client_share_one_document() {
    let server = TestServer::start().await;
    let mut alice = js_peer(&server, "js-alice").await;
    let mut bob = js_peer(&server, "js-bob").await;

    let url = alice
        .create(json!({ "title": "Grade 2 lab", "notes": [] }))
        .await
        .unwrap();
    alice.wait_synced(&url).await.unwrap();
    let found = bob.find(&url).await.unwrap();
    assert_eq!(found["title"], "Grade 2 lab");

    let rust = Client::connect(&server.ws_url(), PeerId::from("rust"))
        .await
        .unwrap();
    let id = DocumentId::from_url(&url).unwrap();
    let doc = within("rust finds the JS document", rust.find(id))
        .await
        .unwrap();
    // The JS client stores JS strings as collaborative text.
    let title = doc.with_doc(|d| read_string(d, ROOT, "title"));
    assert_eq!(title.as_deref(), Some("Grade 2 lab"));

    // JS -> JS and JS -> Rust.
    alice
        .push(&url, "notes", json!("T. counted by 2s"))
        .await
        .unwrap();
    bob.wait_for_length(&url, "notes", 1).await.unwrap();
    within(
        "rust sees the JS note",
        doc.wait_until(|d| {
            d.get(ROOT, "notes")
                .ok()
                .flatten()
                .is_some_and(|(_, list)| d.length(&list) == 1)
        }),
    )
    .await
    .unwrap();

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
    let rust_heads: Vec<String> = doc.heads().iter().map(ToString::to_string).collect();
    for peer in [&mut alice, &mut bob] {
        let got = peer.get(&url).await.unwrap();
        let mut heads: Vec<String> = serde_json::from_value(got["heads"].clone()).unwrap();
        heads.sort();
        let mut expected = rust_heads.clone();
        expected.sort();
        assert_eq!(heads, expected);
    }
}

#[tokio::test]
async fn a_js_client_that_edits_while_disconnected_resyncs_on_reconnect() {
    let server = TestServer::start().await;
    let mut phone = js_peer(&server, "js-phone").await;
    let mut projector = js_peer(&server, "js-projector").await;
    let url = phone.create(json!({ "notes": [] })).await.unwrap();
    phone.wait_synced(&url).await.unwrap();
    projector.find(&url).await.unwrap();

    phone.disconnect().await.unwrap();
    phone.push(&url, "notes", json!("offline 1")).await.unwrap();
    phone.push(&url, "notes", json!("offline 2")).await.unwrap();
    projector
        .push(&url, "notes", json!("projector"))
        .await
        .unwrap();

    phone.reconnect().await.unwrap();
    let merged = projector.wait_for_length(&url, "notes", 3).await.unwrap();
    let phone_view = phone.wait_for_length(&url, "notes", 3).await.unwrap();
    assert_eq!(merged["notes"], phone_view["notes"]);
    // Exactly once: the reconnect did not duplicate the offline notes.
    assert_eq!(merged["notes"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_js_find_of_an_unknown_document_is_answered_unavailable() {
    let server = TestServer::start().await;
    let mut peer = js_peer(&server, "js-finder").await;
    let unknown = DocumentId::random().url();
    let err = peer.find(&unknown).await.unwrap_err();
    assert!(err.to_string().contains("unavailable"), "{err}");
}

#[tokio::test]
async fn js_ephemeral_messages_are_relayed_without_echo_loops() {
    let server = TestServer::start().await;
    let mut alice = js_peer(&server, "js-alice").await;
    let mut bob = js_peer(&server, "js-bob").await;
    let url = alice.create(json!({ "notes": [] })).await.unwrap();
    alice.wait_synced(&url).await.unwrap();
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
