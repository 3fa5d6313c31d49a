//! `GET /api/labs/{labId}/export`: the de-identified research export (JSON and CSV) holds no
//! name, alias, code, key or token and matches the board; the raw Automerge export loads in
//! Rust and in the official JS Automerge and equals the board as clients see it; only the
//! lab's facilitator or the organizer may export.

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use labboard_tests::js::{ensure_installed, JsPeer};
use labboard_tests::{HttpResponse, Lab, Person, TestServer, TEST_ORGANIZER_TOKEN};
use serde_json::{json, Value};

/// When the lab's first note was written, ms since the epoch (2026-11-23T14:00:00Z).
const T0: i64 = 1_795_442_400_000;

/// Display names, aliases and device keys that must never appear in a research export.
const SECRETS: [&str; 7] = [
    "Zyxwvut",
    "Qwertyna",
    "Plovdivka",
    "Jojo",
    "Mimi",
    "device-zyx",
    "device-qwe",
];

async fn observer(server: &TestServer, lab: &Lab, name: &str, device: &str) -> Person {
    let joined = server.joined(&lab.join_code, name, device).await;
    server.person(lab, joined).await
}

async fn facilitator(server: &TestServer, lab: &Lab, name: &str) -> Person {
    let access = server.facilitated(lab, name, "device-fac").await;
    server.person(lab, access).await
}

/// Writes a note as `person` and waits until the server stored it.
#[allow(clippy::too_many_arguments)]
async fn write_note(
    person: &Person,
    id: &str,
    name: &str,
    text: &str,
    at: i64,
    minute: i64,
    children: &[&str],
    timeout: Option<&str>,
) {
    let author = person.author_id.clone();
    person
        .change(|tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let note = tx.put_object(&notes, id, ObjType::Map).unwrap();
            tx.put(&note, "text", text).unwrap();
            tx.put(&note, "authorId", author.as_str()).unwrap();
            tx.put(&note, "authorName", name).unwrap();
            tx.put(&note, "category", "strategies").unwrap();
            tx.put(&note, "createdAt", at).unwrap();
            tx.put(&note, "phase", "lesson-1").unwrap();
            tx.put(&note, "minute", minute).unwrap();
            if let Some(timeout) = timeout {
                tx.put(&note, "timeoutId", timeout).unwrap();
            }
            let list = tx.put_object(&note, "children", ObjType::List).unwrap();
            for (i, child) in children.iter().enumerate() {
                tx.insert(&list, i, *child).unwrap();
            }
            tx.put_object(&note, "reactions", ObjType::Map).unwrap();
        })
        .await;
}

fn export_path(lab: &Lab, query: &str) -> String {
    format!("/api/labs/{}/export?{query}", lab.lab_id)
}

async fn export(server: &TestServer, lab: &Lab, token: &str, query: &str) -> HttpResponse {
    let response = server
        .http("GET", &export_path(lab, query), Some(token), None)
        .await;
    assert_eq!(response.status, 200, "export {query}: {}", response.body);
    response
}

/// A lab whose people, children and texts hold the distinctive strings of [`SECRETS`].
struct Scene {
    server: TestServer,
    lab: Lab,
    fac: Person,
    zyx: Person,
    /// Kept connected for the whole test.
    _qwe: Person,
    timeout_id: String,
}

impl Scene {
    async fn new() -> Self {
        let server = TestServer::start().await;
        let lab = server.create_lab("Making ten").await;
        let fac = facilitator(&server, &lab, "Plovdivka").await;
        let zyx = observer(&server, &lab, "Zyxwvut Alpha", "device-zyx").await;
        let qwe = observer(&server, &lab, "Qwertyna", "device-qwe").await;

        fac.change(|tx| {
            let phases = tx.get(ROOT, "phases").unwrap().unwrap().1;
            let lesson = tx.get(&phases, "lesson-1").unwrap().unwrap().1;
            tx.put(&lesson, "startedAt", T0 - 60_000).unwrap();
            tx.put(ROOT, "currentPhase", "lesson-1").unwrap();
        })
        .await;
        for (person, alias, name, at) in [
            (&zyx, "Jojo", "Zyxwvut Alpha", T0 - 30_000),
            (&qwe, "Mimi B.", "Qwertyna", T0 - 20_000),
        ] {
            person
                .change(|tx| {
                    let children = tx.get(ROOT, "children").unwrap().unwrap().1;
                    let child = tx.put_object(&children, alias, ObjType::Map).unwrap();
                    tx.put(&child, "addedBy", name).unwrap();
                    tx.put(&child, "addedAt", at).unwrap();
                })
                .await;
        }
        let timeout_id = "to-1".to_owned();
        let qwe_id = qwe.author_id.clone();
        qwe.change(|tx| {
            let timeouts = tx.get(ROOT, "timeouts").unwrap().unwrap().1;
            let timeout = tx.put_object(&timeouts, "to-1", ObjType::Map).unwrap();
            tx.put(&timeout, "phase", "lesson-1").unwrap();
            tx.put(&timeout, "calledBy", "Qwertyna").unwrap();
            tx.put(&timeout, "calledById", qwe_id.as_str()).unwrap();
            tx.put(&timeout, "startedAt", T0 + 1_500).unwrap();
        })
        .await;
        write_note(
            &zyx,
            "n1",
            "Zyxwvut Alpha",
            "Jojo counted on, then Mimi B. agreed",
            T0 + 1_000,
            3,
            &["Jojo"],
            None,
        )
        .await;
        write_note(
            &qwe,
            "n2",
            "Qwertyna",
            "Mimi B. said \"ten and 4\", then, pausing,\nused a ten-frame",
            T0 + 2_000,
            4,
            &["Mimi B."],
            Some("to-1"),
        )
        .await;
        qwe.change(|tx| {
            let timeout = tx.get(ROOT, "timeouts").unwrap().unwrap().1;
            let timeout = tx.get(&timeout, "to-1").unwrap().unwrap().1;
            tx.put(&timeout, "endedAt", T0 + 91_500).unwrap();
        })
        .await;
        write_note(
            &fac,
            "n3",
            "Plovdivka",
            "Facilitator's own: Jojo's strategy",
            T0 + 3_000,
            5,
            &[],
            None,
        )
        .await;
        let zyx_id = zyx.author_id.clone();
        zyx.change(|tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let n2 = tx.get(&notes, "n2").unwrap().unwrap().1;
            let reactions = tx.get(&n2, "reactions").unwrap().unwrap().1;
            tx.put(&reactions, zyx_id.as_str(), T0 + 4_000).unwrap();
            let picks = tx.get(ROOT, "picks").unwrap().unwrap().1;
            tx.put(&picks, format!("{zyx_id}:n2"), T0 + 5_000).unwrap();
            let steps = tx.get(ROOT, "nextSteps").unwrap().unwrap().1;
            let step = tx.put_object(&steps, "s1", ObjType::Map).unwrap();
            tx.put(&step, "text", "Talk with Jojo's teacher").unwrap();
            tx.put(&step, "authorId", zyx_id.as_str()).unwrap();
            tx.put(&step, "authorName", "Zyxwvut Alpha").unwrap();
            tx.put(&step, "phase", "final-debrief").unwrap();
            tx.put(&step, "createdAt", T0 + 9_000).unwrap();
        })
        .await;
        fac.change(|tx| {
            let clusters = tx.get(ROOT, "clusters").unwrap().unwrap().1;
            let cluster = tx.put_object(&clusters, "c1", ObjType::Map).unwrap();
            let label = tx.put_object(&cluster, "label", ObjType::Text).unwrap();
            tx.splice_text(&label, 0, 0, "Counting on, like Jojo")
                .unwrap();
            tx.put(&cluster, "order", 0.0).unwrap();
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let n1 = tx.get(&notes, "n1").unwrap().unwrap().1;
            tx.put(&n1, "pinned", true).unwrap();
            tx.put(&n1, "clusterId", "c1").unwrap();
            let agreements = tx.get(ROOT, "agreements").unwrap().unwrap().1;
            let agreement = tx.put_object(&agreements, "a1", ObjType::Map).unwrap();
            let text = tx.put_object(&agreement, "text", ObjType::Text).unwrap();
            tx.splice_text(&text, 0, 0, "=Ask Jojo first, then Mimi B.")
                .unwrap();
            tx.put(&agreement, "owner", "Qwertyna").unwrap();
            tx.put(&agreement, "phase", "debrief-1").unwrap();
            tx.put(&agreement, "createdAt", T0 + 7_000).unwrap();
            tx.put(&agreement, "order", 1.0).unwrap();
        })
        .await;
        Self {
            server,
            lab,
            fac,
            zyx,
            _qwe: qwe,
            timeout_id,
        }
    }
}

/// A tiny RFC 4180 reader: quoted fields may hold commas, CRLF and doubled quotes; records end
/// with CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty(), "a quote inside an unquoted field: {text}");
                quoted = true;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "a bare CR ends no record");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            '\n' => panic!("a bare LF outside quotes: {text:?}"),
            c => field.push(c),
        }
    }
    assert!(!quoted, "an unclosed quote");
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record has no CRLF"
    );
    records
}

/// A JSON value as the CSV writes it (before formula neutralising).
fn as_csv(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(as_csv).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

fn neutralised(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn assert_no_secrets(what: &str, bytes: &[u8], more: &[&str]) {
    let text = String::from_utf8(bytes.to_vec()).expect("exports are UTF-8");
    for secret in SECRETS.iter().chain(more) {
        assert!(
            !text.contains(secret),
            "{what} contains `{secret}`:\n{text}"
        );
    }
}

#[tokio::test]
async fn the_research_export_is_de_identified_and_matches_the_board() {
    let scene = Scene::new().await;
    let (server, lab, fac) = (&scene.server, &scene.lab, &scene.fac);
    let more = [
        lab.join_code.as_str(),
        lab.facilitator_key.as_str(),
        fac.token.as_str(),
        scene.zyx.token.as_str(),
        scene.zyx.author_id.as_str(),
        fac.author_id.as_str(),
        TEST_ORGANIZER_TOKEN,
    ];

    let response = export(server, lab, &fac.token, "format=json").await;
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"making-ten-research.json\"")
    );
    assert_no_secrets("the JSON export", &response.bytes, &more);
    let research = response.json();

    let notes = research["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 3, "{research:#}");
    let iso = |ms: i64| labboard::export::iso_time(ms);
    let timeout = &research["timeouts"][0];
    let n1 = &notes[0];
    assert_eq!(n1["author"], "Observer 1");
    assert_eq!(n1["role"], "observer");
    assert_eq!(n1["category"], "Strategies");
    assert_eq!(n1["phase"], "Lesson 1");
    assert_eq!(n1["minute"], 3);
    assert_eq!(n1["time"], iso(T0 + 1_000));
    assert_eq!(n1["timeout"], "");
    assert_eq!(n1["cluster"], "Counting on, like Child A");
    assert_eq!(n1["pinned"], true);
    assert_eq!(n1["hidden"], false);
    assert_eq!(n1["children"], json!(["Child A"]));
    assert_eq!(n1["text"], "Child A counted on, then Child B agreed");
    let n2 = &notes[1];
    assert_eq!(n2["author"], "Observer 2");
    assert_eq!(n2["minute"], 4);
    assert_eq!(n2["timeout"], timeout["id"]);
    assert_eq!(n2["reactions"], 1);
    assert_eq!(n2["picks"], 1);
    assert_eq!(n2["children"], json!(["Child B"]));
    assert_eq!(
        n2["text"],
        "Child B said \"ten and 4\", then, pausing,\nused a ten-frame"
    );
    let n3 = &notes[2];
    assert_eq!(n3["author"], "Observer 3");
    assert_eq!(n3["role"], "facilitator");
    assert_eq!(n3["text"], "Facilitator's own: Child A's strategy");

    assert_eq!(research["timeouts"].as_array().unwrap().len(), 1);
    assert_eq!(timeout["calledBy"], "Observer 2");
    assert_eq!(timeout["phase"], "Lesson 1");
    assert_eq!(timeout["startedAt"], iso(T0 + 1_500));
    assert_eq!(timeout["endedAt"], iso(T0 + 91_500));
    assert_eq!(timeout["seconds"], 90);
    assert_eq!(timeout["notes"], 1);
    assert!(timeout["id"].as_str().unwrap().starts_with("T-"));
    assert_ne!(timeout["id"], scene.timeout_id.as_str());

    let agreement = &research["agreements"][0];
    assert_eq!(agreement["owner"], "Observer 2");
    assert_eq!(agreement["phase"], "Debrief 1");
    assert_eq!(agreement["text"], "=Ask Child A first, then Child B");
    let step = &research["nextSteps"][0];
    assert_eq!(step["author"], "Observer 1");
    assert_eq!(step["phase"], "Final debrief");
    assert_eq!(step["text"], "Talk with Child A's teacher");

    // Stable: a second export, after another note, gives the same ids and pseudonyms.
    write_note(
        &scene.zyx,
        "n4",
        "Zyxwvut Alpha",
        "later",
        T0 + 60_000,
        9,
        &[],
        None,
    )
    .await;
    let again = export(server, lab, &fac.token, "format=json").await.json();
    for i in 0..3 {
        assert_eq!(again["notes"][i]["id"], notes[i]["id"]);
        assert_eq!(again["notes"][i]["author"], notes[i]["author"]);
    }
    assert_eq!(again["notes"][3]["author"], "Observer 1");

    // Every CSV table parses back to the rows of the JSON.
    for (table, section) in [
        ("notes", "notes"),
        ("timeouts", "timeouts"),
        ("agreements", "agreements"),
        ("nextSteps", "nextSteps"),
    ] {
        let response = export(
            server,
            lab,
            &fac.token,
            &format!("format=csv&table={table}"),
        )
        .await;
        assert_eq!(
            response.header("content-disposition"),
            Some(format!("attachment; filename=\"making-ten-{table}.csv\"").as_str())
        );
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/csv"));
        assert_no_secrets(&format!("the {table} CSV"), &response.bytes, &more);
        let records = parse_csv(&response.body);
        let rows = again[section].as_array().unwrap();
        assert_eq!(records.len(), rows.len() + 1, "{}", response.body);
        let header = &records[0];
        for (record, row) in records[1..].iter().zip(rows) {
            let expected: Vec<String> = header
                .iter()
                .map(|column| neutralised(&as_csv(&row[column.as_str()])))
                .collect();
            assert_eq!(record, &expected, "{table}");
        }
    }
    // The default table is the notes.
    let default = export(server, lab, &fac.token, "format=csv").await;
    assert!(default
        .body
        .starts_with("id,author,role,category,phase,minute"));
    assert_eq!(
        parse_csv(&default.body)[1][15],
        "Child A counted on, then Child B agreed"
    );
}

#[tokio::test]
async fn the_raw_export_loads_in_rust_and_js_and_equals_the_board() {
    ensure_installed().expect("JS test dependencies");
    let scene = Scene::new().await;
    let (server, lab, fac) = (&scene.server, &scene.lab, &scene.fac);
    let response = export(server, lab, &fac.token, "format=automerge").await;
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"making-ten.automerge\"")
    );
    let saved = Automerge::load(&response.bytes).expect("the raw export loads in Rust");
    let client_heads = fac.board.heads();
    assert_eq!(saved.get_heads(), client_heads);
    let notes = saved.get(ROOT, "notes").unwrap().unwrap().1;
    assert_eq!(saved.keys(&notes).count(), 3);

    let mut js = JsPeer::spawn(&server.sync_url(&fac.token), "js-archivist")
        .await
        .expect("node peer starts");
    js.wait_connected().await.expect("node peer joins");
    let seen = js
        .get(&lab.doc_url)
        .await
        .expect("JS client sees the board");
    let loaded = js
        .load_saved(&response.bytes)
        .await
        .expect("the raw export loads in JS Automerge");
    let mut hex: Vec<String> = client_heads.iter().map(ToString::to_string).collect();
    hex.sort();
    for heads in [&loaded["heads"], &seen["heads"]] {
        let mut heads: Vec<String> = serde_json::from_value(heads.clone()).unwrap();
        heads.sort();
        assert_eq!(heads, hex);
    }
    assert_eq!(loaded["doc"], seen["doc"]);
    assert_eq!(
        loaded["doc"]["notes"]["n1"]["text"],
        "Jojo counted on, then Mimi B. agreed"
    );
    js.exit().await.expect("node peer exits");
}

#[tokio::test]
async fn the_html_export_is_the_printable_record_of_the_lab() {
    let scene = Scene::new().await;
    let Scene {
        server, lab, fac, ..
    } = &scene;
    // The facilitator hides one note: the record leaves it out and counts it.
    fac.change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        let n3 = tx.get(&notes, "n3").unwrap().unwrap().1;
        tx.put(&n3, "hidden", true).unwrap();
    })
    .await;
    let response = export(server, lab, &fac.token, "format=html&utcOffset=-300").await;
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"making-ten-record.html\"")
    );
    let html = &response.body;
    assert!(html.starts_with("<!doctype html>"));
    for expected in [
        "<h1>Making ten</h1>",
        "Jojo counted on, then Mimi B. agreed",
        "Mimi B. said &quot;ten and 4&quot;, then, pausing,\nused a ten-frame",
        "Talk with Jojo&#39;s teacher",
        "=Ask Jojo first, then Mimi B.",
        "Counting on, like Jojo",
        "Times are UTC\u{2212}05:00",
        "Called by Qwertyna at 9:00\u{a0}AM \u{b7} 1 min 30 s",
        "1 hidden, left out",
        "In progress",
    ] {
        assert!(html.contains(expected), "the record lacks {expected:?}");
    }
    assert!(
        !html.contains("Facilitator&#39;s own"),
        "a hidden note is left out"
    );
    // Self-contained: nothing to load, nothing to run.
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
    // The time-out lists the note written during it.
    let timeouts = &html[html.find("id=\"timeouts\"").unwrap()..];
    let timeouts = &timeouts[..timeouts.find("</section>").unwrap()];
    assert!(timeouts.contains("1 note written during it"), "{timeouts}");
    assert!(timeouts.contains("Mimi B. said"), "{timeouts}");

    // Once the lab has ended, the record says when.
    let ended = server
        .http(
            "POST",
            &format!("/api/labs/{}/end", lab.lab_id),
            Some(&fac.token),
            None,
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    let html = export(server, lab, &fac.token, "format=html").await.body;
    assert!(
        html.contains("Ended ") && html.contains("Times are UTC"),
        "{html}"
    );
    assert!(!html.contains("In progress"));
}

#[tokio::test]
async fn only_the_labs_facilitator_or_the_organizer_may_export() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Making ten").await;
    let other = server.create_lab("Another lab").await;
    let observer = server.join(&lab.join_code, "Zyxwvut").await;
    let facilitator = server.facilitate(&lab).await;
    let other_facilitator = server.facilitate(&other).await;
    for format in ["json", "csv", "automerge", "html", "zip"] {
        let path = export_path(&lab, &format!("format={format}"));
        let status = |auth: Option<&str>| {
            let server = &server;
            let path = path.clone();
            let auth = auth.map(str::to_owned);
            async move {
                let response = server.http("GET", &path, auth.as_deref(), None).await;
                (response.status, response)
            }
        };
        let (code, response) = status(None).await;
        assert_eq!(code, 401, "{format} without a token");
        assert!(response.error().contains("Authorization"));
        assert_eq!(status(Some("not-a-token")).await.0, 401, "{format}");
        let (code, response) = status(Some(&observer)).await;
        assert_eq!(code, 403, "{format} as an observer");
        assert!(response.error().contains("facilitator"));
        let (code, response) = status(Some(&other_facilitator)).await;
        assert_eq!(code, 404, "{format} with another lab's token");
        assert_eq!(response.error(), "no such lab");
        assert_eq!(status(Some(&facilitator)).await.0, 200, "{format}");
        // The organizer may export a lab nobody has opened since the server started.
        assert_eq!(status(Some(TEST_ORGANIZER_TOKEN)).await.0, 200, "{format}");
    }
    for (query, words) in [
        (
            "format=pdf",
            "unknown export format `pdf`; use json, csv, automerge, html or zip",
        ),
        (
            "",
            "`format` is required: json, csv, automerge, html or zip",
        ),
        ("format=csv&table=children", "unknown table `children`"),
        (
            "format=html&utcOffset=900",
            "`utcOffset` must be minutes east of UTC",
        ),
        ("format=html&utcOffset=east", "invalid query string"),
    ] {
        let response = server
            .http("GET", &export_path(&lab, query), Some(&facilitator), None)
            .await;
        assert_eq!(response.status, 400, "{query}");
        assert!(response.error().contains(words), "{}", response.error());
    }
    let empty = server
        .http(
            "GET",
            &export_path(&other, "format=json"),
            Some(TEST_ORGANIZER_TOKEN),
            None,
        )
        .await
        .json();
    assert_eq!(
        empty,
        json!({"notes": [], "timeouts": [], "agreements": [], "nextSteps": []})
    );
}
