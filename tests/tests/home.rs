//! The labs' home page API: `GET /api/labs` (organizer) and `GET /api/labs/{labId}` (the lab's
//! facilitator or the organizer) summarise each lab with how many phones joined it (also after
//! their tokens are swept), how many notes its board holds (hidden ones too), its state, and
//! when the retention sweep deletes it. Real server, real SQLite file, the Rust client.

use std::time::Duration;

use automerge::transaction::Transactable;
use labboard_tests::{assert_refused, HttpResponse, Lab, Person, TestServer, TEST_ORGANIZER_TOKEN};
use serde_json::{json, Value};

/// A retention long enough that the sweep deletes nothing while the test runs.
const RETENTION: Duration = Duration::from_secs(180 * 24 * 3600);

async fn facilitator_token(server: &TestServer, lab: &Lab, device: &str) -> (String, String) {
    let access = server.facilitated(lab, "Facilitator", device).await;
    (access.token, access.author_id)
}

async fn observer_token(server: &TestServer, lab: &Lab, name: &str, device: &str) -> String {
    server.joined(&lab.join_code, name, device).await.token
}

/// Writes a note as `person`, hidden or not, and waits until the server stored it.
async fn write_note(person: &Person, id: &str, text: &str, hidden: bool) {
    person
        .write_note(id, text, "Someone", 1_795_442_400_000, |tx, note| {
            tx.put(note, "minute", 3_i64).unwrap();
            if hidden {
                tx.put(note, "hidden", true).unwrap();
            }
        })
        .await;
}

async fn get_lab(server: &TestServer, lab_id: &str, auth: Option<&str>) -> HttpResponse {
    server
        .http("GET", &format!("/api/labs/{lab_id}"), auth, None)
        .await
}

/// `GET /api/labs/{labId}` with `auth`, expecting 200.
async fn summary(server: &TestServer, lab: &Lab, auth: &str) -> Value {
    let response = get_lab(server, &lab.lab_id, Some(auth)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

/// The organizer's list, by lab id.
async fn listed(server: &TestServer, lab: &Lab) -> Value {
    let response = server
        .http("GET", "/api/labs", Some(TEST_ORGANIZER_TOKEN), None)
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let list = response.json();
    list.as_array()
        .expect("a list of labs")
        .iter()
        .find(|entry| entry["labId"] == lab.lab_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{} not in {list}", lab.lab_id))
}

#[tokio::test]
async fn summaries_count_phones_and_notes_and_follow_the_lab_to_its_end() {
    let server = TestServer::start_with(|config| config.retention = Some(RETENTION)).await;
    let lab = server.create_lab("Making ten").await;
    let quiet = server.create_lab("Area models").await;

    // Three phones, one of which joins twice, and the facilitator's laptop: four devices.
    let ana = server
        .person(
            &lab,
            server.joined(&lab.join_code, "Ana", "device-ana").await,
        )
        .await;
    observer_token(&server, &lab, "Ana again", "device-ana").await;
    let bo = observer_token(&server, &lab, "Bo", "device-bo").await;
    observer_token(&server, &lab, "Cy", "device-cy").await;
    let fac = server
        .person(
            &lab,
            server.facilitated(&lab, "Facilitator", "device-fac").await,
        )
        .await;
    // The same laptop signing in again is the same device.
    facilitator_token(&server, &lab, "device-fac").await;

    write_note(&ana, "n1", "K. counted on from 8", false).await;
    write_note(&ana, "n2", "L. made ten first", false).await;
    write_note(&fac, "n3", "Two groups of five", false).await;
    write_note(&fac, "n4", "Off topic", true).await;

    let expected = |state: &str| {
        json!({
            "labId": lab.lab_id,
            "title": "Making ten",
            "school": "Hillside",
            "grade": "2",
            "state": state,
            "phones": 4,
            "notes": 4,
            "hiddenNotes": 1,
        })
    };
    let check = |got: &Value, want: &Value| {
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(&got[key], value, "{key} in {got}");
        }
    };
    let before = summary(&server, &lab, &fac.token).await;
    check(&before, &expected("active"));
    assert_eq!(before["endedAt"], Value::Null, "{before}");
    assert_eq!(
        before["deleteAt"],
        Value::Null,
        "a running lab is kept: {before}"
    );
    assert!(
        before["createdAt"].as_i64().is_some_and(|t| t > 0),
        "{before}"
    );
    assert_eq!(before["date"], "", "{before}");
    // The organizer reads the same, alone or in the list.
    assert_eq!(summary(&server, &lab, TEST_ORGANIZER_TOKEN).await, before);
    assert_eq!(listed(&server, &lab).await, before);
    let empty = listed(&server, &quiet).await;
    check(
        &empty,
        &json!({ "title": "Area models", "state": "active", "phones": 0, "notes": 0, "hiddenNotes": 0 }),
    );

    // Ended by its facilitator: ended, and deleted one retention later.
    let response = server
        .http(
            "POST",
            &format!("/api/labs/{}/end", lab.lab_id),
            Some(&fac.token),
            None,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let ended_at = response.json()["endedAt"].as_i64().expect("endedAt");
    let after = summary(&server, &lab, &fac.token).await;
    check(&after, &expected("ended"));
    assert_eq!(after["endedAt"], ended_at, "{after}");
    let retention_ms = i64::try_from(RETENTION.as_millis()).unwrap();
    assert_eq!(after["deleteAt"], ended_at + retention_ms, "{after}");
    assert_eq!(listed(&server, &lab).await, after);
    assert_eq!(listed(&server, &quiet).await["deleteAt"], Value::Null);

    // An observer of the ended lab may still read its board, not its summary.
    assert_refused(
        &get_lab(&server, &lab.lab_id, Some(&bo)).await,
        403,
        "only the lab's facilitator",
    );
}

#[tokio::test]
async fn without_a_retention_an_ended_lab_has_no_deletion_date() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Number talks").await;
    let response = server
        .http(
            "POST",
            &format!("/api/labs/{}/end", lab.lab_id),
            Some(TEST_ORGANIZER_TOKEN),
            None,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let got = summary(&server, &lab, TEST_ORGANIZER_TOKEN).await;
    assert_eq!(got["state"], "ended", "{got}");
    assert!(got["endedAt"].as_i64().is_some(), "{got}");
    assert_eq!(got["deleteAt"], Value::Null, "{got}");
}

#[tokio::test]
async fn phones_are_still_counted_after_their_tokens_are_swept() {
    let ttl = Duration::from_millis(300);
    let server = TestServer::start_with(|config| config.token_ttl = ttl).await;
    let lab = server.create_lab("Tens frames").await;
    observer_token(&server, &lab, "Ana", "device-ana").await;
    observer_token(&server, &lab, "Bo", "device-bo").await;
    tokio::time::sleep(ttl * 2).await;
    // This join sweeps the two expired tokens.
    observer_token(&server, &lab, "Cy", "device-cy").await;
    let got = listed(&server, &lab).await;
    assert_eq!(got["phones"], 3, "{got}");
}

#[tokio::test]
async fn only_the_labs_facilitator_or_the_organizer_reads_its_summary() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Skip counting").await;
    let other = server.create_lab("Arrays").await;
    let observer = observer_token(&server, &lab, "Ana", "device-ana").await;
    let (facilitator, _) = facilitator_token(&server, &lab, "device-fac").await;
    let (other_facilitator, _) = facilitator_token(&server, &other, "device-other").await;

    assert_refused(
        &get_lab(&server, &lab.lab_id, None).await,
        401,
        "Authorization",
    );
    assert_refused(
        &get_lab(&server, &lab.lab_id, Some("not-a-token")).await,
        401,
        "invalid or expired token",
    );
    assert_refused(
        &get_lab(&server, &lab.lab_id, Some(&observer)).await,
        403,
        "only the lab's facilitator",
    );
    assert_refused(
        &get_lab(&server, &lab.lab_id, Some(&other_facilitator)).await,
        404,
        "no such lab",
    );
    assert_refused(
        &get_lab(&server, "nosuchlab", Some(TEST_ORGANIZER_TOKEN)).await,
        404,
        "no such lab",
    );
    // The list is the organizer's alone.
    assert_refused(
        &server
            .http("GET", "/api/labs", Some(&facilitator), None)
            .await,
        401,
        "wrong organizer token",
    );
    assert_eq!(
        summary(&server, &lab, &facilitator).await["labId"],
        lab.lab_id.as_str()
    );
    assert_eq!(
        summary(&server, &other, TEST_ORGANIZER_TOKEN).await["labId"],
        other.lab_id.as_str()
    );

    // Deleted: gone for its facilitator and the organizer alike.
    let deleted = server
        .http(
            "DELETE",
            &format!("/api/labs/{}", lab.lab_id),
            Some(&facilitator),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_refused(
        &get_lab(&server, &lab.lab_id, Some(TEST_ORGANIZER_TOKEN)).await,
        404,
        "no such lab",
    );
    assert_refused(
        &get_lab(&server, &lab.lab_id, Some(&facilitator)).await,
        401,
        "invalid or expired token",
    );
    let list = server
        .http("GET", "/api/labs", Some(TEST_ORGANIZER_TOKEN), None)
        .await
        .json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["labId"].as_str())
        .collect();
    assert_eq!(ids, [other.lab_id.as_str()]);
}
