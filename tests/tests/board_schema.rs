//! Board schema upgrades through the real server: a lab whose stored board is still schema
//! version 1 or 2 opens upgraded to the current version (3) for the Rust and the official JS
//! client, keeping every value it had; the upgrade is
//! stored as soon as anyone can see it, and phones editing the upgraded board at once (reactions
//! to one note, new notes, phase changes) end with identical boards.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{
    ActorId, Automerge, AutomergeError, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value,
    ROOT,
};
use labboard::storage::{SqliteStorage, Storage};
use labboard_protocol::board::{self, LabInfo, DEFAULT_CATEGORIES, DEFAULT_PHASES};
use labboard_protocol::client::{Client, DocHandle};
use labboard_protocol::PeerId;
use labboard_tests::js::{ensure_installed, JsPeer};
use labboard_tests::{within, Lab, TestServer};
use serde_json::{json, Value as Json};

/// Pause between two polls of the JS peer, which has no "wait for these heads" command.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Phones editing the upgraded board at once.
const PHONES: usize = 4;

/// The lab every test creates, as the harness's `create_lab` sends it.
fn lab_info() -> LabInfo {
    LabInfo {
        title: "Making ten".into(),
        school: "Hillside".into(),
        grade: "2".into(),
        date: String::new(),
    }
}

/// A board exactly as version 1 of `new_board` wrote it (kept here: the protocol crate now
/// writes version 3).
fn v1_board(info: &LabInfo, actor: ActorId) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor);
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(ROOT, "schemaVersion", 1_u64)?;
        let lab = tx.put_object(ROOT, "lab", ObjType::Map)?;
        for (key, value) in [
            ("title", info.title.as_str()),
            ("school", &info.school),
            ("grade", &info.grade),
            ("date", &info.date),
            ("problemOfPractice", ""),
            ("mathematicalGoal", ""),
            ("lessonTask", ""),
        ] {
            let text = tx.put_object(&lab, key, ObjType::Text)?;
            tx.splice_text(&text, 0, 0, value)?;
        }
        let categories = tx.put_object(ROOT, "categories", ObjType::Map)?;
        for (order, (id, label, color)) in DEFAULT_CATEGORIES.iter().enumerate() {
            let category = tx.put_object(&categories, *id, ObjType::Map)?;
            let text = tx.put_object(&category, "label", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, label)?;
            let text = tx.put_object(&category, "color", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, color)?;
            tx.put(&category, "order", i64::try_from(order).unwrap_or(i64::MAX))?;
        }
        tx.put_object(ROOT, "notes", ObjType::Map)?;
        Ok(())
    })
    .expect("building a version 1 board");
    doc
}

/// A version 1 board with two notes as version 1 phones wrote them: no `reactions`.
fn v1_board_with_notes() -> Automerge {
    let mut doc = v1_board(&lab_info(), ActorId::random());
    doc.transact::<_, _, AutomergeError>(|tx| {
        let (_, notes) = tx.get(ROOT, "notes")?.expect("notes");
        for (id, text, child) in [
            (
                "v1-note-1",
                "T. counted by 2s, then regrouped into 10s",
                "T.",
            ),
            ("v1-note-2", "M. drew ten frames", "M."),
        ] {
            let note = tx.put_object(&notes, id, ObjType::Map)?;
            tx.put(&note, "text", text)?;
            tx.put(&note, "category", "student-thinking")?;
            tx.put(&note, "authorName", "Ana")?;
            tx.put(&note, "authorId", "device-ana")?;
            tx.put(&note, "createdAt", 1_763_900_000_000_i64)?;
            let children = tx.put_object(&note, "children", ObjType::List)?;
            tx.insert(&children, 0, child)?;
        }
        Ok(())
    })
    .expect("adding version 1 notes");
    doc
}

/// Creates a lab through the API, then replaces its stored board with `old` while the server
/// is stopped, and restarts on the same data directory.
async fn server_with_old_board(old: &Automerge) -> (TestServer, Lab) {
    let server = TestServer::start().await;
    let lab = server.create_lab(&lab_info().title).await;
    let dir = server.stop().await;
    let store = SqliteStorage::open(dir.path()).expect("open the stopped server's storage");
    store
        .delete(lab.doc_id)
        .await
        .expect("remove the new board");
    store
        .append(lab.doc_id, old.save())
        .await
        .expect("store the old board");
    store.close().await.expect("close storage");
    (TestServer::start_in(dir, |_| {}).await, lab)
}

/// Joins the lab as `name` and finds its board with the Rust client.
/// A Rust client of the lab's facilitator: the phones here also rename and reorder phases.
async fn rust_phone(server: &TestServer, lab: &Lab, name: &str) -> (Client, DocHandle) {
    let token = server.facilitate(lab).await;
    let client = within(
        "rust client connects",
        Client::connect(&server.sync_url(&token), PeerId::from(name)),
    )
    .await
    .expect("the token opens a socket");
    let doc = within("rust client finds the board", client.find(lab.doc_id))
        .await
        .expect("the lab's board is available");
    (client, doc)
}

/// The document as JSON, text as strings: what the JS client shows, to compare replicas.
fn to_json(doc: &Automerge) -> Json {
    object_json(doc, &ROOT)
}

fn object_json(doc: &Automerge, obj: &ObjId) -> Json {
    let entry = |prop: automerge::Prop| {
        let (value, id) = doc.get(obj, prop).unwrap().unwrap();
        match value {
            Value::Object(_) => object_json(doc, &id),
            Value::Scalar(scalar) => match scalar.as_ref() {
                ScalarValue::Str(s) => json!(s.to_string()),
                ScalarValue::Int(n) => json!(n),
                ScalarValue::Uint(n) => json!(n),
                ScalarValue::F64(n) => json!(n),
                ScalarValue::Boolean(b) => json!(b),
                ScalarValue::Null => Json::Null,
                other => json!(format!("{other:?}")),
            },
        }
    };
    match doc.object_type(obj).unwrap() {
        ObjType::Text => Json::String(doc.text(obj).unwrap()),
        ObjType::List => (0..doc.length(obj)).map(|i| entry(i.into())).collect(),
        ObjType::Map | ObjType::Table => doc
            .keys(obj)
            .map(|key| (key.clone(), entry(key.into())))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// Asserts the upgraded shape of [`v1_board_with_notes`] in a board as JSON, whichever client
/// read it (numbers compared as numbers: JS prints `1.0` as `1`).
fn assert_upgraded(board: &Json) {
    assert_eq!(
        board["schemaVersion"],
        board::BOARD_SCHEMA_VERSION,
        "{board}"
    );
    assert_eq!(board["lab"]["title"], "Making ten", "{board}");
    let phases = board["phases"].as_object().expect("phases");
    assert_eq!(phases.len(), DEFAULT_PHASES.len(), "{board}");
    for (id, label, order) in DEFAULT_PHASES {
        assert_eq!(phases[id]["label"], label, "{board}");
        assert_eq!(phases[id]["order"].as_f64(), Some(order), "{board}");
    }
    assert!(board.get("currentPhase").is_none(), "{board}");
    for key in [
        "timeouts",
        "children",
        "clusters",
        "agreements",
        "picks",
        "nextSteps",
    ] {
        assert_eq!(board[key], json!({}), "{key} in {board}");
    }
    let note = &board["notes"]["v1-note-1"];
    assert_eq!(note["reactions"], json!({}), "{board}");
    assert_eq!(note["children"], json!(["T."]), "{board}");
    assert_eq!(
        note["text"], "T. counted by 2s, then regrouped into 10s",
        "{board}"
    );
    assert_eq!(board["notes"]["v1-note-2"]["reactions"], json!({}));
    // Version 1 values are not rewritten: the category order stays an int.
    assert_eq!(
        board["categories"]["strategies"]["order"].as_f64(),
        Some(1.0)
    );
}

/// A board as version 2 left it after a lesson: [`v1_board_with_notes`] upgraded by version 2
/// (phases, time-outs, children, clusters and agreements, reactions on every note) and then used:
/// a phase run, a time-out, a reaction, a cluster and an agreement.
fn v2_board_in_use() -> Automerge {
    let mut doc = v1_board_with_notes();
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(ROOT, "schemaVersion", 2_u64)?;
        let phases = tx.put_object(ROOT, "phases", ObjType::Map)?;
        for (id, label, order) in DEFAULT_PHASES {
            let phase = tx.put_object(&phases, id, ObjType::Map)?;
            let text = tx.put_object(&phase, "label", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, label)?;
            tx.put(&phase, "order", order)?;
        }
        let lesson = tx.get(&phases, "lesson-1")?.expect("lesson 1").1;
        tx.put(&lesson, "startedAt", 1_763_900_000_000_i64)?;
        tx.put(ROOT, "currentPhase", "lesson-1")?;
        let timeouts = tx.put_object(ROOT, "timeouts", ObjType::Map)?;
        let timeout = tx.put_object(&timeouts, "t-1", ObjType::Map)?;
        tx.put(&timeout, "phase", "lesson-1")?;
        tx.put(&timeout, "calledBy", "Ana")?;
        tx.put(&timeout, "calledById", "device-ana")?;
        tx.put(&timeout, "startedAt", 1_763_900_060_000_i64)?;
        tx.put_object(ROOT, "children", ObjType::Map)?;
        let clusters = tx.put_object(ROOT, "clusters", ObjType::Map)?;
        let cluster = tx.put_object(&clusters, "c-1", ObjType::Map)?;
        let text = tx.put_object(&cluster, "label", ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "Counting on")?;
        let agreements = tx.put_object(ROOT, "agreements", ObjType::Map)?;
        let agreement = tx.put_object(&agreements, "ag-1", ObjType::Map)?;
        let text = tx.put_object(&agreement, "text", ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "Wait two minutes before offering ten-frames")?;
        tx.put(&agreement, "phase", "debrief-1")?;
        let (_, notes) = tx.get(ROOT, "notes")?.expect("notes");
        for id in ["v1-note-1", "v1-note-2"] {
            let note = tx.get(&notes, id)?.expect("note").1;
            let reactions = tx.put_object(&note, "reactions", ObjType::Map)?;
            if id == "v1-note-1" {
                tx.put(&reactions, "device-ben", 1_763_900_070_000_i64)?;
            }
        }
        Ok(())
    })
    .expect("version 2's upgrade and a lesson");
    doc
}

#[tokio::test]
async fn a_version_2_board_opens_upgraded_with_every_value_kept() {
    ensure_installed().expect("JS test dependencies");
    let old = v2_board_in_use();
    let mut expected = to_json(&old);
    expected["schemaVersion"] = json!(board::BOARD_SCHEMA_VERSION);
    expected["picks"] = json!({});
    expected["nextSteps"] = json!({});
    let (server, lab) = server_with_old_board(&old).await;

    let (_client, doc) = rust_phone(&server, &lab, "rust-ana").await;
    assert_eq!(doc.with_doc(to_json), expected, "the Rust client's board");
    assert_eq!(
        doc.with_doc(|d| d.get_changes(&[]).len()),
        old.get_changes(&[]).len() + 1,
        "one upgrade change"
    );
    let heads = doc.heads();

    let facilitator = server.facilitate(&lab).await;
    let mut js = JsPeer::spawn(&server.sync_url(&facilitator), "js-facilitator")
        .await
        .expect("node peer starts");
    js.wait_connected().await.expect("node peer joins");
    let found = js.get(&lab.doc_url).await.expect("JS finds the board");
    assert_eq!(js_heads(&found), hex(&heads), "JS has the upgraded board");
    let seen = &found["doc"];
    assert_eq!(seen["schemaVersion"], 3, "{seen}");
    assert_eq!(seen["picks"], json!({}), "{seen}");
    assert_eq!(seen["nextSteps"], json!({}), "{seen}");
    assert_eq!(seen["timeouts"], expected["timeouts"], "{seen}");
    assert_eq!(seen["notes"], expected["notes"], "{seen}");
    assert_eq!(seen["agreements"], expected["agreements"], "{seen}");
    js.exit().await.unwrap();
}

#[tokio::test]
async fn an_old_schema_board_opens_upgraded_for_rust_and_js_clients() {
    ensure_installed().expect("JS test dependencies");
    let old = v1_board_with_notes();
    let (server, lab) = server_with_old_board(&old).await;

    let (_client, doc) = rust_phone(&server, &lab, "rust-ana").await;
    assert_upgraded(&doc.with_doc(to_json));
    let (changes, upgrade_actor) = doc.with_doc(|d| {
        let changes = d.get_changes(&[]);
        let last = changes.last().expect("changes").actor_id().clone();
        (changes.len(), last)
    });
    assert_eq!(
        changes,
        old.get_changes(&[]).len() + 1,
        "one upgrade change on top of the old history"
    );
    assert_ne!(&upgrade_actor, old.get_actor(), "upgraded by the server");

    // Whatever a client saw is already stored.
    let heads = doc.heads();
    let mut stored = server.stored_board(&lab).await;
    assert_eq!(stored.get_heads(), heads, "the upgrade is stored");
    assert!(
        !board::upgrade(&mut stored).unwrap(),
        "nothing left to upgrade"
    );

    let facilitator = server.facilitate(&lab).await;
    let mut js = JsPeer::spawn(&server.sync_url(&facilitator), "js-facilitator")
        .await
        .expect("node peer starts");
    js.wait_connected().await.expect("node peer joins");
    let found = js.get(&lab.doc_url).await.expect("JS finds the board");
    assert_upgraded(&found["doc"]);
    assert_eq!(
        js_heads(&found),
        hex(&heads),
        "JS has exactly the upgraded board"
    );
    js.exit().await.unwrap();

    // Loading it again upgrades nothing more.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_client, again) = rust_phone(&server, &lab, "rust-ben").await;
    assert_eq!(again.heads(), heads, "no second upgrade");
}

/// Heads as sorted hex strings, as the JS driver reports them.
fn hex(heads: &[ChangeHash]) -> Vec<String> {
    let mut heads: Vec<String> = heads.iter().map(ToString::to_string).collect();
    heads.sort();
    heads
}

/// The sorted heads of a JS `get` reply.
fn js_heads(reply: &Json) -> Vec<String> {
    let mut heads: Vec<String> = serde_json::from_value(reply["heads"].clone()).expect("heads");
    heads.sort();
    heads
}

/// Phone `i`'s edits, made at once by every phone before any sees another's: a reaction to the
/// same version 1 note, a new note (created with its empty `reactions`), a reorder, a rename of
/// the same phase, a start time and the current phase.
fn edit_at_once(doc: &DocHandle, i: usize) {
    doc.change(|tx| {
        let device = format!("device-{i}");
        let reactions = tx
            .get(obj_at_tx(tx, &["notes", "v1-note-1"]), "reactions")
            .unwrap()
            .expect("the upgrade added reactions")
            .1;
        tx.put(
            &reactions,
            &device,
            1_763_900_000_000_i64 + i64::try_from(i).unwrap(),
        )
        .unwrap();

        let notes = obj_at_tx(tx, &["notes"]);
        let note = tx
            .put_object(&notes, format!("note-{i}"), ObjType::Map)
            .unwrap();
        tx.put(&note, "text", format!("seen by phone {i}")).unwrap();
        tx.put(&note, "category", "strategies").unwrap();
        tx.put(&note, "authorId", device.as_str()).unwrap();
        tx.put_object(&note, "children", ObjType::List).unwrap();
        tx.put_object(&note, "reactions", ObjType::Map).unwrap();
        tx.put(&note, "phase", "lesson-1").unwrap();

        let phases = obj_at_tx(tx, &["phases"]);
        let (id, _, _) = DEFAULT_PHASES[i % DEFAULT_PHASES.len()];
        let phase = tx.get(&phases, id).unwrap().unwrap().1;
        tx.put(&phase, "order", 10.5 + f64::from(u32::try_from(i).unwrap()))
            .unwrap();
        let debrief = tx.get(&phases, "debrief-1").unwrap().unwrap().1;
        let label = tx.get(&debrief, "label").unwrap().unwrap().1;
        let end = tx.length(&label);
        tx.splice_text(&label, end, 0, &format!(" p{i}")).unwrap();
        let lesson = tx.get(&phases, "lesson-1").unwrap().unwrap().1;
        tx.put(
            &lesson,
            "startedAt",
            1_763_900_000_000_i64 + i64::try_from(i).unwrap(),
        )
        .unwrap();
        tx.put(ROOT, "currentPhase", id).unwrap();
    });
}

fn obj_at_tx(tx: &automerge::transaction::Transaction<'_>, path: &[&str]) -> ObjId {
    path.iter()
        .fold(ROOT, |obj, key| tx.get(&obj, *key).unwrap().unwrap().1)
}

/// Whether `doc` holds every phone's edits from [`edit_at_once`].
fn has_every_edit(doc: &Automerge) -> bool {
    let board = to_json(doc);
    let label = board["phases"]["debrief-1"]["label"].as_str().unwrap_or("");
    (0..PHONES).all(|i| {
        board["notes"]["v1-note-1"]["reactions"]
            .get(format!("device-{i}"))
            .is_some()
            && board["notes"].get(format!("note-{i}")).is_some()
            && label.contains(&format!(" p{i}"))
    })
}

#[tokio::test]
async fn phones_editing_an_upgraded_board_at_once_converge() {
    let (server, lab) = server_with_old_board(&v1_board_with_notes()).await;
    let mut phones = Vec::new();
    for i in 0..PHONES {
        phones.push(rust_phone(&server, &lab, &format!("phone-{i}")).await);
    }
    let upgraded = phones[0].1.heads();
    for (_, doc) in &phones {
        assert_eq!(
            doc.heads(),
            upgraded,
            "every phone starts from the upgraded board"
        );
    }
    for (i, (_, doc)) in phones.iter().enumerate() {
        edit_at_once(doc, i);
    }
    for (_, doc) in &phones {
        within("a phone gets every edit", doc.wait_until(has_every_edit))
            .await
            .unwrap();
        within("the server has everything", doc.wait_synced())
            .await
            .unwrap();
    }

    let heads = phones[0].1.heads();
    let board = phones[0].1.with_doc(to_json);
    for (_, doc) in &phones {
        assert_eq!(doc.heads(), heads);
        assert_eq!(doc.with_doc(to_json), board);
    }
    let reactions = board["notes"]["v1-note-1"]["reactions"]
        .as_object()
        .unwrap();
    assert_eq!(reactions.len(), PHONES, "every reaction survives: {board}");
    assert_eq!(
        board["notes"].as_object().unwrap().len(),
        2 + PHONES,
        "every note survives: {board}"
    );
    for i in 0..PHONES {
        assert_eq!(board["notes"][format!("note-{i}")]["reactions"], json!({}));
    }
    let phases = board["phases"].as_object().unwrap();
    assert_eq!(phases.len(), DEFAULT_PHASES.len(), "{board}");
    assert!(phases.values().all(|p| p["order"].is_f64()), "{board}");
    let current = board["currentPhase"].as_str().expect("a current phase");
    assert!(phases.contains_key(current), "{board}");

    // The server stored the same board every phone has.
    assert_eq!(server.stored_board(&lab).await.get_heads(), heads);
}

#[tokio::test]
async fn a_js_client_ends_with_the_same_board_as_rust_phones() {
    ensure_installed().expect("JS test dependencies");
    let (server, lab) = server_with_old_board(&v1_board_with_notes()).await;
    let token = server.facilitate(&lab).await;
    let mut js = JsPeer::spawn(&server.sync_url(&token), "js-observer")
        .await
        .expect("node peer starts");
    js.wait_connected().await.expect("node peer joins");
    js.find(&lab.doc_url).await.expect("JS finds the board");

    let mut phones = Vec::new();
    for i in 0..2 {
        phones.push(rust_phone(&server, &lab, &format!("phone-{i}")).await);
    }
    for (i, (_, doc)) in phones.iter().enumerate() {
        edit_at_once(doc, i);
    }
    for (_, doc) in &phones {
        within(
            "both phones' edits arrive",
            doc.wait_until(|d| {
                let board = to_json(d);
                board["notes"]["v1-note-1"]["reactions"]
                    .as_object()
                    .is_some_and(|r| r.len() == 2)
                    && board["notes"].as_object().is_some_and(|n| n.len() == 4)
            }),
        )
        .await
        .unwrap();
    }
    let heads = hex(&phones[0].1.heads());
    assert_eq!(hex(&phones[1].1.heads()), heads);
    let board = phones[0].1.with_doc(to_json);

    let seen = within("the JS client catches up", async {
        loop {
            let got = js.get(&lab.doc_url).await.expect("JS reads the board");
            if js_heads(&got) == heads {
                break got["doc"].clone();
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await;
    assert_eq!(seen["notes"], board["notes"]);
    assert_eq!(seen["currentPhase"], board["currentPhase"]);
    for (id, phase) in board["phases"].as_object().unwrap() {
        assert_eq!(seen["phases"][id]["label"], phase["label"]);
        assert_eq!(
            seen["phases"][id]["order"].as_f64(),
            phase["order"].as_f64()
        );
    }
    js.exit().await.unwrap();
}
