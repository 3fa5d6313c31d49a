//! Photos in the lab's record (`format=html`) and in the zip export (`format=zip`), through a
//! real server and its SQLite file: the record embeds the shown photos of the visible notes as
//! `data:` URIs equal to what the photo API serves, and leaves the hidden ones out; the zip holds
//! the board, the research data and every photo of the lab with a manifest; another lab's photos
//! appear in neither.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use base64::Engine as _;
use labboard_tests::{
    http_raw, photo_jpeg, photo_png, sha256_hex, HttpResponse, Lab, Person, TestServer,
    TEST_ORGANIZER_TOKEN,
};
use serde_json::{json, Value};

/// Uploads `bytes` to the lab under their hash; returns the id.
async fn upload(server: &TestServer, lab: &Lab, token: &str, bytes: &[u8]) -> String {
    let id = sha256_hex(bytes);
    let path = format!("/api/labs/{}/photos/{id}", lab.lab_id);
    let response = http_raw(server.addr, "PUT", &path, Some(token), Some(bytes)).await;
    assert_eq!(response.status, 201, "upload: {}", response.body);
    id
}

/// The photo as the photo API serves it: its content type and bytes.
async fn served(server: &TestServer, lab: &Lab, token: &str, id: &str) -> (String, Vec<u8>) {
    let path = format!("/api/labs/{}/photos/{id}", lab.lab_id);
    let response = http_raw(server.addr, "GET", &path, Some(token), None).await;
    assert_eq!(response.status, 200, "get {id}: {}", response.body);
    (
        response.header("content-type").unwrap().to_owned(),
        response.bytes,
    )
}

async fn export(server: &TestServer, lab: &Lab, token: &str, query: &str) -> HttpResponse {
    let path = format!("/api/labs/{}/export?{query}", lab.lab_id);
    let response = http_raw(server.addr, "GET", &path, Some(token), None).await;
    assert_eq!(response.status, 200, "export {query}: {}", response.body);
    response
}

/// Writes note `id` as `person`, referring to `photos` in that order.
async fn write_note(person: &Person, id: &str, text: &str, at: i64, photos: &[&str]) {
    person
        .write_note(id, text, "Bea", at, |tx, note| {
            let list = tx.put_object(note, "photos", ObjType::List).unwrap();
            for (i, photo) in photos.iter().enumerate() {
                tx.insert(&list, i, *photo).unwrap();
            }
        })
        .await;
}

/// Every `<img>` of a page: its `src` and `alt`, in page order.
fn images(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> String {
        let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let len = tag[start..].find('"').unwrap();
        tag[start..start + len].to_owned()
    };
    html.split("<img ")
        .skip(1)
        .map(|rest| {
            let tag = &rest[..rest.find('>').unwrap()];
            (attr(tag, "src"), attr(tag, "alt"))
        })
        .collect()
}

/// A `data:<type>;base64,<data>` URI: its type and bytes.
fn decode_data_uri(uri: &str) -> (String, Vec<u8>) {
    let rest = uri.strip_prefix("data:").expect("a data: URI");
    let (kind, data) = rest.split_once(";base64,").expect("base64 data");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("valid base64");
    (kind.to_owned(), bytes)
}

fn u16_at(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
}

/// Reads a zip archive of stored files as the format describes it (the end record, the
/// central directory, each local header), checking every size and CRC-32. Returns the files
/// by name.
fn read_zip(zip: &[u8]) -> BTreeMap<String, Vec<u8>> {
    assert!(zip.len() >= 22, "too short for a zip");
    let end = zip.len() - 22;
    assert_eq!(
        u32_at(zip, end),
        0x0605_4b50,
        "the end of central directory"
    );
    assert_eq!(u16_at(zip, end + 20), 0, "no archive comment");
    let count = u16_at(zip, end + 10);
    assert_eq!(u16_at(zip, end + 8), count);
    let directory_size = u32_at(zip, end + 12);
    let mut at = u32_at(zip, end + 16);
    assert_eq!(
        at + directory_size,
        end,
        "the directory ends at the end record"
    );
    let mut files = BTreeMap::new();
    for _ in 0..count {
        assert_eq!(u32_at(zip, at), 0x0201_4b50, "a central directory header");
        let method = u16_at(zip, at + 10);
        let crc = u32_at(zip, at + 16);
        let compressed = u32_at(zip, at + 20);
        let size = u32_at(zip, at + 24);
        let name_len = u16_at(zip, at + 28);
        let extra_len = u16_at(zip, at + 30);
        let comment_len = u16_at(zip, at + 32);
        let local = u32_at(zip, at + 42);
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
        at += 46 + name_len + extra_len + comment_len;

        assert_eq!(method, 0, "{name} is stored");
        assert_eq!(compressed, size, "{name}");
        assert_eq!(
            u32_at(zip, local),
            0x0403_4b50,
            "the local header of {name}"
        );
        assert_eq!(u16_at(zip, local + 8), 0, "{name} is stored");
        assert_eq!(u32_at(zip, local + 14), crc, "{name}");
        assert_eq!(u32_at(zip, local + 22), size, "{name}");
        let local_name_len = u16_at(zip, local + 26);
        let local_extra_len = u16_at(zip, local + 28);
        assert_eq!(
            &zip[local + 30..local + 30 + local_name_len],
            name.as_bytes()
        );
        let data_at = local + 30 + local_name_len + local_extra_len;
        let data = zip[data_at..data_at + size].to_vec();
        assert_eq!(crc32fast::hash(&data) as usize, crc, "the CRC-32 of {name}");
        assert!(files.insert(name.clone(), data).is_none(), "{name} twice");
    }
    assert_eq!(at, end);
    files
}

/// One lab with photos on its notes, and another lab with a photo of its own.
struct Scene {
    server: TestServer,
    lab: Lab,
    other: Lab,
    fac: Person,
    /// Kept connected for the whole test.
    _bea: Person,
    /// On n1, shown.
    a: String,
    /// On n1, hidden by the facilitator.
    b: String,
    /// On n2, a note the facilitator hid.
    c: String,
    /// On n1, never uploaded.
    d: String,
    /// On n3, shown (a PNG).
    e: String,
    /// The other lab's photo, which n3 refers to too.
    f: String,
}

impl Scene {
    async fn new() -> Self {
        let server = TestServer::start().await;
        let lab = server.create_lab("Making ten").await;
        let other = server.create_lab("Another lab").await;
        let fac = server.facilitated(&lab, "Ana", "device-ana").await;
        let fac = server.person(&lab, fac).await;
        let bea = server.joined(&lab.join_code, "Bea", "device-bea").await;
        let bea = server.person(&lab, bea).await;
        let other_token = server.facilitate(&other).await;

        let a = upload(&server, &lab, &bea.token, &photo_jpeg(b"ten frame")).await;
        let b = upload(&server, &lab, &bea.token, &photo_jpeg(b"a face")).await;
        let c = upload(&server, &lab, &fac.token, &photo_jpeg(b"hidden note")).await;
        let d = sha256_hex(&photo_jpeg(b"still on the phone"));
        let e = upload(&server, &lab, &bea.token, &photo_png(b"number line")).await;
        let f = upload(&server, &other, &other_token, &photo_jpeg(b"other lab")).await;

        write_note(&bea, "n1", "Drew two ten frames", 1_000, &[&a, &b, &d]).await;
        write_note(&bea, "n2", "Counted on fingers", 2_000, &[&c]).await;
        write_note(&bea, "n3", "Used a number line", 3_000, &[&e, &f]).await;
        let hidden_photo = b.clone();
        fac.change(|tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let n1 = tx.get(&notes, "n1").unwrap().unwrap().1;
            let hidden = tx.put_object(&n1, "hiddenPhotos", ObjType::Map).unwrap();
            tx.put(&hidden, hidden_photo.as_str(), true).unwrap();
            let n2 = tx.get(&notes, "n2").unwrap().unwrap().1;
            tx.put(&n2, "hidden", true).unwrap();
        })
        .await;
        Self {
            server,
            lab,
            other,
            fac,
            _bea: bea,
            a,
            b,
            c,
            d,
            e,
            f,
        }
    }
}

#[tokio::test]
async fn the_record_embeds_the_shown_photos_and_leaves_hidden_ones_out() {
    let s = Scene::new().await;
    let html = export(&s.server, &s.lab, &s.fac.token, "format=html")
        .await
        .body;

    assert!(
        html.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; img-src data:\">"
        ),
        "the record's CSP allows data: images and nothing more"
    );
    assert!(!html.contains("<script") && !html.contains("<link"));

    let images = images(&html);
    assert_eq!(images.len(), 2, "only A and E are shown: {images:?}");
    let shown = [
        (&s.a, "Photo 1 of 2 on Bea&#39;s note"),
        (&s.e, "Photo 1 of 2 on Bea&#39;s note"),
    ];
    for ((src, alt), (id, expected_alt)) in images.iter().zip(shown) {
        let (kind, bytes) = decode_data_uri(src);
        let (served_kind, served_bytes) = served(&s.server, &s.lab, &s.fac.token, id).await;
        assert_eq!(kind, served_kind, "{id}");
        assert_eq!(bytes, served_bytes, "{id} is embedded as the API serves it");
        assert_eq!(alt, expected_alt);
    }
    // Neither the hidden photo, nor the hidden note's, nor the other lab's is in the page.
    for id in [&s.b, &s.c] {
        let (_, bytes) = served(&s.server, &s.lab, &s.fac.token, id).await;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert!(!html.contains(&encoded), "{id} is left out");
    }
    // D was never uploaded, and F is another lab's: both read as not uploaded.
    assert_eq!(html.matches("A photo was not uploaded.").count(), 2);
    for expected in [
        "<li>4 photos</li>",
        "<li>2 hidden photos, left out</li>",
        "<li>1 hidden, left out</li>",
        "Hidden notes and photos are left out of this record and counted.",
    ] {
        assert!(html.contains(expected), "the record lacks {expected:?}");
    }
    assert!(!html.contains("Counted on fingers"), "the hidden note");

    // The other lab's record has none of this lab's photos (nor its own: no note shows it).
    let other = export(&s.server, &s.other, TEST_ORGANIZER_TOKEN, "format=html")
        .await
        .body;
    assert!(!other.contains("<img "), "{other}");
}

#[tokio::test]
async fn the_zip_export_holds_the_board_the_research_data_and_every_photo() {
    let s = Scene::new().await;
    let response = export(&s.server, &s.lab, &s.fac.token, "format=zip").await;
    assert_eq!(response.header("content-type"), Some("application/zip"));
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"making-ten-export.zip\"")
    );
    let files = read_zip(&response.bytes);

    let automerge = export(&s.server, &s.lab, &s.fac.token, "format=automerge").await;
    assert_eq!(files["board.automerge"], automerge.bytes);
    let board = automerge::Automerge::load(&files["board.automerge"]).unwrap();
    assert!(board.get(ROOT, "notes").unwrap().is_some());
    let research = export(&s.server, &s.lab, &s.fac.token, "format=json").await;
    let research: Value = serde_json::from_slice(&research.bytes).unwrap();
    let in_zip: Value = serde_json::from_slice(&files["research.json"]).unwrap();
    assert_eq!(in_zip, research);
    assert_eq!(in_zip["notes"].as_array().unwrap().len(), 3);

    // Every photo of the lab, hidden ones included, as the photo API serves it; the other
    // lab's photo is not among them, though a note refers to it.
    let mut expected_files = vec![
        "board.automerge".to_owned(),
        "photos.json".to_owned(),
        "research.json".to_owned(),
    ];
    let mut manifest_photos = Vec::new();
    let mut stored = vec![
        (
            &s.a,
            "jpg",
            json!([{"note": "n1", "hidden": false, "noteHidden": false}]),
        ),
        (
            &s.b,
            "jpg",
            json!([{"note": "n1", "hidden": true, "noteHidden": false}]),
        ),
        (
            &s.c,
            "jpg",
            json!([{"note": "n2", "hidden": false, "noteHidden": true}]),
        ),
        (
            &s.e,
            "png",
            json!([{"note": "n3", "hidden": false, "noteHidden": false}]),
        ),
    ];
    stored.sort_by_key(|(id, _, _)| id.as_str());
    for (id, extension, notes) in stored {
        let file = format!("photos/{id}.{extension}");
        let (kind, bytes) = served(&s.server, &s.lab, &s.fac.token, id).await;
        assert_eq!(files.get(&file), Some(&bytes), "{file}");
        manifest_photos.push(json!({
            "id": id,
            "file": file,
            "contentType": kind,
            "bytes": bytes.len(),
            "notes": notes,
        }));
        expected_files.push(file);
    }
    expected_files.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), expected_files);

    let mut not_uploaded = vec![
        json!({"id": s.d, "notes": [{"note": "n1", "hidden": false, "noteHidden": false}]}),
        json!({"id": s.f, "notes": [{"note": "n3", "hidden": false, "noteHidden": false}]}),
    ];
    not_uploaded.sort_by_key(|v| v["id"].as_str().unwrap().to_owned());
    let manifest: Value = serde_json::from_slice(&files["photos.json"]).unwrap();
    assert_eq!(
        manifest,
        json!({"photos": manifest_photos, "notUploaded": not_uploaded})
    );

    // The other lab's zip has its own photo only, on no note.
    let other = export(&s.server, &s.other, TEST_ORGANIZER_TOKEN, "format=zip").await;
    assert_eq!(
        other.header("content-disposition"),
        Some("attachment; filename=\"another-lab-export.zip\"")
    );
    let other = read_zip(&other.bytes);
    let other_photos: Vec<&String> = other.keys().filter(|k| k.starts_with("photos/")).collect();
    assert_eq!(other_photos, vec![&format!("photos/{}.jpg", s.f)]);
    assert_eq!(
        other[&format!("photos/{}.jpg", s.f)],
        photo_jpeg(b"other lab")
    );
    let manifest: Value = serde_json::from_slice(&other["photos.json"]).unwrap();
    assert_eq!(manifest["photos"][0]["notes"], json!([]));
    assert_eq!(manifest["notUploaded"], json!([]));
}
