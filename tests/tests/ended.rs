//! Ending a lab: who may end it, and that afterwards its board is read-only for every role
//! (the open board at once, and after a restart), its phones still read it, and its join code
//! joins nothing. Real server, real SQLite file, the Rust client.

use std::time::Duration;

use labboard_protocol::client::{Client, DocHandle};
use labboard_tests::{
    add_note, assert_refused, http_raw, note, photo_png, sha256_hex, within, HttpResponse, Lab,
    TestServer, TEST_ORGANIZER_TOKEN,
};
use serde_json::Value;

/// Retention of the retention test: far shorter than any real one, so the sweep runs at once.
const SHORT_RETENTION: Duration = Duration::from_millis(200);

/// Pause between two polls of a condition that has no event to wait on (the retention sweep).
const POLL_EVERY: Duration = Duration::from_millis(50);

/// The words of the `error` a phone gets for a change to an ended lab's board.
const ENDED_WORDS: &str = "this lab has ended; nothing more can be added";

async fn end(server: &TestServer, lab_id: &str, auth: Option<&str>) -> HttpResponse {
    let path = format!("/api/labs/{lab_id}/end");
    server.http("POST", &path, auth, None).await
}

/// Ends the lab with `auth`, expecting 200; returns its `endedAt`.
async fn ended_at(server: &TestServer, lab: &Lab, auth: &str) -> i64 {
    let response = end(server, &lab.lab_id, Some(auth)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let json = response.json();
    assert_eq!(json["labId"], lab.lab_id.as_str(), "{json}");
    json["endedAt"]
        .as_i64()
        .unwrap_or_else(|| panic!("no endedAt in {json}"))
}

/// Writes a note from `doc` and expects the server to refuse it and close the connection.
async fn refused_write(client: &Client, doc: &DocHandle, id: &str) {
    add_note(doc, id, "written after the end");
    let closed = within("the server refuses the change", client.closed()).await;
    let error = closed.error.clone().unwrap_or_default();
    assert!(error.contains(ENDED_WORDS), "{closed}");
}

fn lab_in_list<'a>(list: &'a Value, lab: &Lab) -> &'a Value {
    list.as_array()
        .expect("a list of labs")
        .iter()
        .find(|entry| entry["labId"] == lab.lab_id.as_str())
        .unwrap_or_else(|| panic!("{} not in {list}", lab.lab_id))
}

#[tokio::test]
async fn an_ended_lab_refuses_every_change_and_its_code_even_after_a_restart() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Fractions on a number line").await;
    let other = server.create_lab("Another lab").await;
    let observer = server.join(&lab.join_code, "Ana").await;
    let facilitator = server.facilitate(&lab).await;
    let other_facilitator = server.facilitate(&other).await;
    let (observer_client, observer_doc) = server.attach(&observer, "ana", &lab).await;
    let (facilitator_client, facilitator_doc) =
        server.attach(&facilitator, "facilitator", &lab).await;
    add_note(&observer_doc, "before", "written before the end");
    within("the note is stored", observer_doc.wait_synced())
        .await
        .unwrap();

    // Who may end it.
    assert_refused(&end(&server, &lab.lab_id, None).await, 401, "Authorization");
    assert_refused(
        &end(&server, &lab.lab_id, Some(&observer)).await,
        403,
        "only the lab's facilitator",
    );
    assert_refused(
        &end(&server, &lab.lab_id, Some(&other_facilitator)).await,
        404,
        "no such lab",
    );
    assert_refused(
        &end(&server, "no-such-lab", Some(TEST_ORGANIZER_TOKEN)).await,
        404,
        "no such lab",
    );
    let listed = server
        .http("GET", "/api/labs", Some(TEST_ORGANIZER_TOKEN), None)
        .await
        .json();
    assert_eq!(lab_in_list(&listed, &lab)["endedAt"], Value::Null);

    // The facilitator ends it; ending again changes nothing.
    let at = ended_at(&server, &lab, &facilitator).await;
    assert_eq!(ended_at(&server, &lab, &facilitator).await, at);
    assert_eq!(ended_at(&server, &lab, TEST_ORGANIZER_TOKEN).await, at);
    let listed = server
        .http("GET", "/api/labs", Some(TEST_ORGANIZER_TOKEN), None)
        .await
        .json();
    assert_eq!(lab_in_list(&listed, &lab)["endedAt"], at);
    assert_eq!(lab_in_list(&listed, &other)["endedAt"], Value::Null);
    let session = server
        .http("GET", "/api/session", Some(&observer), None)
        .await;
    assert_eq!(session.status, 200, "{}", session.body);
    assert_eq!(session.json()["endedAt"], at);

    // The open board refuses changes from every role at once; nothing reaches storage.
    let heads = server.stored_board(&lab).await.get_heads();
    refused_write(&observer_client, &observer_doc, "observer-after").await;
    refused_write(&facilitator_client, &facilitator_doc, "facilitator-after").await;
    assert_eq!(server.stored_board(&lab).await.get_heads(), heads);

    // The code joins nothing, and cannot be replaced by one that would.
    assert_refused(
        &server.try_join(&lab.join_code, "Late").await,
        404,
        "no lab has this join code",
    );
    assert_refused(
        &server
            .http(
                "POST",
                &format!("/api/labs/{}/join-code", lab.lab_id),
                Some(&facilitator),
                None,
            )
            .await,
        409,
        "this lab has ended",
    );

    // Phones still read the board.
    let (_reader, reader_doc) = server.attach(&observer, "ana-again", &lab).await;
    within(
        "a phone still gets the ended board",
        reader_doc.wait_until(|doc| note(doc, "before").is_some()),
    )
    .await
    .unwrap();
    assert_eq!(reader_doc.heads(), heads);

    // The other lab carries on.
    let (_other_client, other_doc) = server.phone(&other, "Other phone").await;
    add_note(&other_doc, "other", "the other lab still takes notes");
    within("the other lab still syncs", other_doc.wait_synced())
        .await
        .expect("the other lab's socket stays open");

    // After a restart the board is still read-only and the code still joins nothing.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (client, doc) = server
        .attach(&facilitator, "facilitator-restarted", &lab)
        .await;
    within(
        "the restarted server serves the ended board",
        doc.wait_until(|doc| note(doc, "before").is_some()),
    )
    .await
    .unwrap();
    refused_write(&client, &doc, "facilitator-after-restart").await;
    assert_eq!(server.stored_board(&lab).await.get_heads(), heads);
    assert_refused(
        &server.try_join(&lab.join_code, "Late").await,
        404,
        "no lab has this join code",
    );
    let session = server
        .http("GET", "/api/session", Some(&facilitator), None)
        .await
        .json();
    assert_eq!(session["endedAt"], at);
    assert_eq!(session["joinCode"], Value::Null, "{session}");
}

#[tokio::test]
async fn the_organizer_ends_a_lab_whose_board_is_not_open() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Area models").await;
    let observer = server.join(&lab.join_code, "Bo").await;
    let at = ended_at(&server, &lab, TEST_ORGANIZER_TOKEN).await;
    assert!(at > 0, "{at}");
    assert_eq!(ended_at(&server, &lab, TEST_ORGANIZER_TOKEN).await, at);

    // The board loads read-only.
    let (client, doc) = server.attach(&observer, "bo", &lab).await;
    refused_write(&client, &doc, "after").await;
    assert_refused(
        &server.try_join(&lab.join_code, "Late").await,
        404,
        "no lab has this join code",
    );
}

/// Whether `text` is anywhere in the database file or its write-ahead log.
fn in_db_files(dir: &std::path::Path, text: &str) -> bool {
    ["labboard.db", "labboard.db-wal"].iter().any(|name| {
        std::fs::read(dir.join(name))
            .is_ok_and(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
    })
}

async fn listed_ids(server: &TestServer) -> Vec<String> {
    let listed = server
        .http("GET", "/api/labs", Some(TEST_ORGANIZER_TOKEN), None)
        .await
        .json();
    listed
        .as_array()
        .expect("a list of labs")
        .iter()
        .filter_map(|lab| lab["labId"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_ended_lab_is_deleted_once_its_retention_has_passed() {
    let server = TestServer::start_with(|config| config.retention = Some(SHORT_RETENTION)).await;
    let ended = server.create_lab("Ended lab").await;
    let running = server.create_lab("Running lab").await;
    let ended_text = "Ended note Quillwort perihelion";
    let running_text = "Running note Marmaduke tessellation";
    let (_ended_phone, ended_doc) = server.phone(&ended, "Ana").await;
    let (_running_phone, running_doc) = server.phone(&running, "Bo").await;
    add_note(&ended_doc, "ended", ended_text);
    add_note(&running_doc, "running", running_text);
    for doc in [&ended_doc, &running_doc] {
        within("the note is stored", doc.wait_synced())
            .await
            .unwrap();
    }
    // A photo of the lab, whose image data is a distinctive text: deleted with it.
    let photo_text = "Ended photo Pennywhistle rhombus";
    let photo = photo_png(photo_text.as_bytes());
    let photo_id = sha256_hex(&photo);
    let photo_path = format!("/api/labs/{}/photos/{photo_id}", ended.lab_id);
    let token = server.join(&ended.join_code, "Cy").await;
    let uploaded = http_raw(server.addr, "PUT", &photo_path, Some(&token), Some(&photo)).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    // The check below can only pass by deletion if the note and the photo are in the file to
    // begin with.
    assert!(in_db_files(server.dir.path(), ended_text));
    assert!(in_db_files(server.dir.path(), photo_text));
    // Running labs are never swept, however long they run.
    assert_eq!(listed_ids(&server).await.len(), 2);

    ended_at(&server, &ended, TEST_ORGANIZER_TOKEN).await;
    within("the retention sweep deletes the ended lab", async {
        while listed_ids(&server).await.contains(&ended.lab_id)
            || in_db_files(server.dir.path(), ended_text)
            || in_db_files(server.dir.path(), photo_text)
        {
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await;
    assert_eq!(listed_ids(&server).await, [running.lab_id.as_str()]);
    assert!(in_db_files(server.dir.path(), running_text));
    add_note(&running_doc, "after", "the running lab carries on");
    within("the running lab still syncs", running_doc.wait_synced())
        .await
        .expect("the running lab's socket stays open");
}
