//! Photos of student work (`PUT`/`GET /api/labs/{labId}/photos/{sha256}`), through a real
//! server and raw HTTP: stored without their metadata, scoped to their lab, within the limits,
//! durable, and deleted with their lab down to the bytes in the database files.

use labboard_tests::{
    assert_refused, camera_jpeg, create_lab, exif_with_gps, facilitate, http_raw,
    http_with_headers, join_lab, photo_png as png, sha256_hex, within, HttpResponse, Lab,
    ServerProcess, TestServer, TEST_ORGANIZER_TOKEN,
};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The marker segments of a JPEG up to its first scan (marker, payload), and the rest from the
/// scan's data on. Panics if the JPEG's structure is broken.
fn jpeg_segments(jpeg: &[u8]) -> (Vec<(u8, Vec<u8>)>, Vec<u8>) {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI");
    let mut pos = 2;
    let mut segments = Vec::new();
    loop {
        assert_eq!(jpeg[pos], 0xFF, "a marker at {pos}");
        let marker = jpeg[pos + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        let payload = jpeg[pos + 4..pos + 2 + length].to_vec();
        pos += 2 + length;
        segments.push((marker, payload));
        if marker == 0xDA {
            return (segments, jpeg[pos..].to_vec());
        }
    }
}

fn photo_path(lab_id: &str, id: &str) -> String {
    format!("/api/labs/{lab_id}/photos/{id}")
}

async fn put_as(
    addr: std::net::SocketAddr,
    lab_id: &str,
    id: &str,
    token: Option<&str>,
    bytes: &[u8],
) -> HttpResponse {
    http_raw(addr, "PUT", &photo_path(lab_id, id), token, Some(bytes)).await
}

/// Uploads `bytes` under their own hash.
async fn put(addr: std::net::SocketAddr, lab: &Lab, token: &str, bytes: &[u8]) -> HttpResponse {
    put_as(addr, &lab.lab_id, &sha256_hex(bytes), Some(token), bytes).await
}

async fn get(addr: std::net::SocketAddr, lab: &Lab, id: &str, token: Option<&str>) -> HttpResponse {
    http_raw(addr, "GET", &photo_path(&lab.lab_id, id), token, None).await
}

/// Asserts a 201 or 200 answer naming `id` with `bytes` stored.
fn assert_stored(response: &HttpResponse, status: u16, id: &str, bytes: usize) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        response.json(),
        serde_json::json!({ "id": id, "bytes": bytes }),
        "{}",
        response.body
    );
}

/// Everything of the database file and its write-ahead log, as bytes.
fn db_files(dir: &std::path::Path) -> Vec<(&'static str, Vec<u8>)> {
    ["labboard.db", "labboard.db-wal"]
        .into_iter()
        .filter_map(|name| Some((name, std::fs::read(dir.join(name)).ok()?)))
        .collect()
}

fn in_db_files(dir: &std::path::Path, needle: &[u8]) -> Vec<&'static str> {
    db_files(dir)
        .into_iter()
        .filter(|(_, bytes)| contains(bytes, needle))
        .map(|(name, _)| name)
        .collect()
}

#[tokio::test]
async fn a_camera_original_is_stored_without_its_metadata_and_served_back() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Photos").await;
    let observer = server.join(&lab.join_code, "Ana").await;
    let facilitator = server.facilitate(&lab).await;
    let (original, expected) = camera_jpeg(b"student work: 3 + 7 = 10 drawn as ten-frames");
    assert!(contains(&original, b"Exif\0\0"));
    assert!(contains(&original, &0x8825u16.to_be_bytes()));
    let id = sha256_hex(&original);

    // An observer uploads the camera original as is.
    let stored = put(server.addr, &lab, &observer, &original).await;
    assert_stored(&stored, 201, &id, expected.len());

    for token in [&observer, &facilitator, TEST_ORGANIZER_TOKEN] {
        let served = get(server.addr, &lab, &id, Some(token)).await;
        assert_eq!(served.status, 200, "{}", served.body);
        assert_eq!(served.header("content-type"), Some("image/jpeg"));
        assert_eq!(
            served.header("cache-control"),
            Some("private, max-age=31536000, immutable")
        );
        assert_eq!(served.header("etag"), Some(format!("\"{id}\"").as_str()));
        assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
        let (segments, scan) = jpeg_segments(&served.bytes);
        let markers: Vec<u8> = segments.iter().map(|(marker, _)| *marker).collect();
        assert_eq!(markers, [0xE0, 0xDB, 0xC0, 0xC4, 0xDA], "kept segments");
        for gone in [
            &b"Exif"[..],
            b"GPS",
            b"SchoolPhone",
            b"xmpmeta",
            b"Hillside",
        ] {
            assert!(!contains(&served.bytes, gone), "{gone:?} was served");
        }
        // The image itself is intact: every kept segment and the scan byte for byte.
        assert_eq!(served.bytes, expected);
        let (expected_segments, expected_scan) = jpeg_segments(&original);
        let kept: Vec<_> = expected_segments
            .into_iter()
            .filter(|(marker, _)| !matches!(marker, 0xE1 | 0xFE))
            .collect();
        assert_eq!(segments, kept);
        assert_eq!(scan, expected_scan);
    }

    // The same upload again: the same answer, 200, nothing stored twice.
    let again = put(server.addr, &lab, &facilitator, &original).await;
    assert_stored(&again, 200, &id, expected.len());
    let again = put(server.addr, &lab, TEST_ORGANIZER_TOKEN, &original).await;
    assert_stored(&again, 200, &id, expected.len());

    // The browser's revalidation: 304 without the bytes, for any tag list naming it.
    for tag in [
        format!("\"{id}\""),
        format!("W/\"{id}\""),
        format!("\"other\", \"{id}\""),
    ] {
        let cached = http_with_headers(
            server.addr,
            "GET",
            &photo_path(&lab.lab_id, &id),
            Some(&observer),
            &[("If-None-Match", &tag)],
            None,
        )
        .await;
        assert_eq!(cached.status, 304, "{tag}: {}", cached.body);
        assert!(cached.bytes.is_empty());
        assert_eq!(cached.header("etag"), Some(format!("\"{id}\"").as_str()));
    }
    let other = http_with_headers(
        server.addr,
        "GET",
        &photo_path(&lab.lab_id, &id),
        Some(&observer),
        &[("If-None-Match", "\"something-else\"")],
        None,
    )
    .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.bytes, expected);
}

#[tokio::test]
async fn png_and_webp_are_stored_without_their_metadata() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Formats").await;
    let observer = server.join(&lab.join_code, "Ana").await;

    let plain = png(b"pixels");
    let mut tagged = plain.clone();
    // A tEXt chunk after IHDR (8 + 25 bytes).
    let text = {
        let body = b"Author\0Maria Lopez";
        let mut out = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(b"tEXt");
        out.extend_from_slice(body);
        out.extend_from_slice(&[0; 4]);
        out
    };
    tagged.splice(33..33, text);
    let id = sha256_hex(&tagged);
    assert_stored(
        &put(server.addr, &lab, &observer, &tagged).await,
        201,
        &id,
        plain.len(),
    );
    let served = get(server.addr, &lab, &id, Some(&observer)).await;
    assert_eq!(served.header("content-type"), Some("image/png"));
    assert_eq!(served.bytes, plain);

    let riff = |chunks: &[&[u8]]| {
        let body = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend_from_slice(&body);
        out
    };
    let vp8x = |flags: u8| {
        let mut out = b"VP8X".to_vec();
        out.extend_from_slice(&10u32.to_le_bytes());
        out.extend_from_slice(&[flags, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out
    };
    let image = b"VP8L\x06\0\0\0\x2f\0\0\0\x10\x07".to_vec();
    let mut exif = b"EXIF".to_vec();
    let exif_body = &exif_with_gps()[6..];
    exif.extend_from_slice(&u32::try_from(exif_body.len()).unwrap().to_le_bytes());
    exif.extend_from_slice(exif_body);
    let webp = riff(&[&vp8x(0x08), &image, &exif]);
    let id = sha256_hex(&webp);
    let expected = riff(&[&vp8x(0), &image]);
    assert_stored(
        &put(server.addr, &lab, &observer, &webp).await,
        201,
        &id,
        expected.len(),
    );
    let served = get(server.addr, &lab, &id, Some(&observer)).await;
    assert_eq!(served.header("content-type"), Some("image/webp"));
    assert_eq!(served.bytes, expected);
}

#[tokio::test]
async fn bad_uploads_get_a_status_and_words_and_store_nothing() {
    const MAX: usize = 64 * 1024;
    let server = TestServer::start_with(|config| config.max_photo_bytes = MAX).await;
    let lab = server.create_lab("Limits").await;
    let token = server.join(&lab.join_code, "Ana").await;
    let addr = server.addr;
    let photo = png(b"a photo");
    let id = sha256_hex(&photo);

    assert_refused(
        &put_as(
            addr,
            &lab.lab_id,
            &sha256_hex(b"other bytes"),
            Some(&token),
            &photo,
        )
        .await,
        400,
        "the photo's bytes do not match its id",
    );
    for bad_id in [
        id.to_uppercase(),
        id[1..].to_owned(),
        format!("{id}0"),
        "x".into(),
    ] {
        assert_refused(
            &put_as(addr, &lab.lab_id, &bad_id, Some(&token), &photo).await,
            400,
            "64 lowercase hex digits",
        );
    }
    let text = b"Maria drew ten-frames; see the photo".to_vec();
    assert_refused(
        &put(addr, &lab, &token, &text).await,
        415,
        "JPEG, PNG or WebP",
    );
    let (jpeg, _) = camera_jpeg(b"cut short");
    assert_refused(
        &put(addr, &lab, &token, &jpeg[..jpeg.len() - 20]).await,
        415,
        "not a readable JPEG",
    );
    assert_refused(
        &put(addr, &lab, &token, &photo[..photo.len() - 5]).await,
        415,
        "not a readable PNG",
    );
    // Over --max-photo-bytes: 413 in words.
    let huge = png(&vec![7u8; MAX]);
    assert_refused(
        &put(addr, &lab, &token, &huge).await,
        413,
        "larger than 64 KiB",
    );
    // Without a token, or with a wrong one.
    assert_refused(
        &put_as(addr, &lab.lab_id, &id, None, &photo).await,
        401,
        "Authorization",
    );
    assert_refused(
        &put_as(addr, &lab.lab_id, &id, Some("not-a-token"), &photo).await,
        401,
        "invalid or expired token",
    );
    assert_refused(&get(addr, &lab, &id, None).await, 401, "Authorization");
    // Nothing of these was stored.
    assert_refused(
        &get(addr, &lab, &id, Some(&token)).await,
        404,
        "no such photo",
    );

    // The API's 16 KiB body limit does not apply to photos: a 40 KiB one is stored.
    let big = png(&vec![9u8; 40 * 1024]);
    let big_id = sha256_hex(&big);
    assert_stored(
        &put(addr, &lab, &token, &big).await,
        201,
        &big_id,
        big.len(),
    );
    assert_eq!(get(addr, &lab, &big_id, Some(&token)).await.bytes, big);
    // And the server carries on for the rest of the API.
    assert_eq!(server.try_join(&lab.join_code, "Bo").await.status, 200);
}

#[tokio::test]
async fn a_lab_quota_counts_each_photo_once_and_is_507_when_full() {
    let server = TestServer::start_with(|config| config.max_lab_photo_bytes = 300).await;
    let lab = server.create_lab("Quota").await;
    let other = server.create_lab("Other").await;
    let token = server.join(&lab.join_code, "Ana").await;
    let other_token = server.join(&other.join_code, "Bo").await;
    let addr = server.addr;

    let first = png(&[1; 143]);
    assert_eq!(first.len(), 200);
    let second = png(&[2; 43]);
    let third = png(&[3; 3]);
    assert_stored(
        &put(addr, &lab, &token, &first).await,
        201,
        &sha256_hex(&first),
        200,
    );
    assert_stored(
        &put(addr, &lab, &token, &first).await,
        200,
        &sha256_hex(&first),
        200,
    );
    // 200 + 100 = 300: fits only if the repeat took nothing.
    assert_stored(
        &put(addr, &lab, &token, &second).await,
        201,
        &sha256_hex(&second),
        100,
    );
    let full = put(addr, &lab, &token, &third).await;
    assert_refused(&full, 507, "this lab's photo space is full");
    assert!(full.error().contains("300 bytes"), "{}", full.error());
    // Repeats of stored photos still answer.
    assert_stored(
        &put(addr, &lab, &token, &second).await,
        200,
        &sha256_hex(&second),
        100,
    );
    // Another lab has its own space.
    assert_stored(
        &put(addr, &other, &other_token, &third).await,
        201,
        &sha256_hex(&third),
        60,
    );
}

#[tokio::test]
async fn photos_stay_within_their_lab() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let lab = server.create_lab("Ours").await;
    let other = server.create_lab("Theirs").await;
    let observer = server.join(&lab.join_code, "Ana").await;
    let other_observer = server.join(&other.join_code, "Bo").await;
    let other_facilitator = server.facilitate(&other).await;
    let photo = png(b"our lab's photo");
    let id = sha256_hex(&photo);
    assert_stored(
        &put(addr, &lab, &observer, &photo).await,
        201,
        &id,
        photo.len(),
    );

    for token in [&other_observer, &other_facilitator] {
        // As if the lab did not exist, for reading, writing and revalidating.
        assert_refused(&get(addr, &lab, &id, Some(token)).await, 404, "no such lab");
        let mine = png(b"their photo");
        assert_refused(&put(addr, &lab, token, &mine).await, 404, "no such lab");
        let cached = http_with_headers(
            addr,
            "GET",
            &photo_path(&lab.lab_id, &id),
            Some(token),
            &[("If-None-Match", &format!("\"{id}\""))],
            None,
        )
        .await;
        assert_refused(&cached, 404, "no such lab");
    }
    // The other lab does not have it, even by its id.
    assert_refused(
        &get(addr, &other, &id, Some(&other_observer)).await,
        404,
        "no such photo",
    );
    assert_refused(
        &get(addr, &other, &id, Some(TEST_ORGANIZER_TOKEN)).await,
        404,
        "no such photo",
    );
    let cached = http_with_headers(
        addr,
        "GET",
        &photo_path(&other.lab_id, &id),
        Some(&other_observer),
        &[("If-None-Match", &format!("\"{id}\""))],
        None,
    )
    .await;
    assert_refused(&cached, 404, "no such photo");
    // An unknown lab, even for the organizer.
    let nowhere = http_raw(
        addr,
        "GET",
        &photo_path("no-such-lab", &id),
        Some(TEST_ORGANIZER_TOKEN),
        None,
    )
    .await;
    assert_refused(&nowhere, 404, "no such lab");
    assert_eq!(get(addr, &lab, &id, Some(&observer)).await.bytes, photo);
}

#[tokio::test]
async fn an_ended_lab_keeps_its_photos_and_takes_no_new_ones() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let lab = server.create_lab("Ending").await;
    let observer = server.join(&lab.join_code, "Ana").await;
    let facilitator = server.facilitate(&lab).await;
    let photo = png(b"before the end");
    let id = sha256_hex(&photo);
    assert_stored(
        &put(addr, &lab, &observer, &photo).await,
        201,
        &id,
        photo.len(),
    );

    let ended = server
        .http(
            "POST",
            &format!("/api/labs/{}/end", lab.lab_id),
            Some(&facilitator),
            None,
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);

    let late = png(b"after the end");
    for token in [&observer, &facilitator, TEST_ORGANIZER_TOKEN] {
        assert_refused(
            &put(addr, &lab, token, &late).await,
            409,
            "this lab has ended",
        );
    }
    // A phone repeating an upload that was stored before the end hears that it is stored.
    assert_stored(
        &put(addr, &lab, &observer, &photo).await,
        200,
        &id,
        photo.len(),
    );
    let served = get(addr, &lab, &id, Some(&observer)).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.bytes, photo);
    assert_refused(
        &get(addr, &lab, &sha256_hex(&late), Some(&observer)).await,
        404,
        "no such photo",
    );
}

#[tokio::test]
async fn a_deleted_labs_photos_are_gone_from_the_database_files() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let lab = server.create_lab("Deleted").await;
    let kept = server.create_lab("Kept").await;
    let observer = server.join(&lab.join_code, "Ana").await;
    let facilitator = server.facilitate(&lab).await;
    let kept_observer = server.join(&kept.join_code, "Bo").await;
    // Large enough to take overflow pages; the pattern repeats, so some copy of it lies whole
    // in a page.
    let pattern = b"Zephyrine-glockenspiel-ten-frame ";
    let (jpeg, _) = camera_jpeg(&pattern.repeat(3000));
    let id = sha256_hex(&jpeg);
    assert_eq!(put(addr, &lab, &observer, &jpeg).await.status, 201);
    let kept_pattern = b"Kept-lab-Marmalade-number-line ";
    let kept_photo = png(&kept_pattern.repeat(10));
    let kept_id = sha256_hex(&kept_photo);
    assert_eq!(
        put(addr, &kept, &kept_observer, &kept_photo).await.status,
        201
    );
    // The check below can only pass by deletion if the photo is in the files to begin with.
    assert!(!in_db_files(server.dir.path(), pattern).is_empty());

    let deleted = server
        .http(
            "DELETE",
            &format!("/api/labs/{}", lab.lab_id),
            Some(&facilitator),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    // At once: the 204 says the lab is gone.
    let left = in_db_files(server.dir.path(), pattern);
    assert!(left.is_empty(), "the photo's bytes are left in {left:?}");
    assert_refused(
        &get(addr, &lab, &id, Some(TEST_ORGANIZER_TOKEN)).await,
        404,
        "no such lab",
    );
    assert_refused(
        &get(addr, &lab, &id, Some(&observer)).await,
        401,
        "invalid or expired",
    );

    // The other lab's photo is untouched.
    assert_eq!(
        get(addr, &kept, &kept_id, Some(&kept_observer)).await.bytes,
        kept_photo
    );
    let dir = server.stop().await;
    assert!(in_db_files(dir.path(), pattern).is_empty());
    assert!(!in_db_files(dir.path(), kept_pattern).is_empty());
}

#[tokio::test]
async fn a_photo_acknowledged_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path()).await.unwrap();
    let lab = create_lab(server.addr, "Crash").await;
    let observer = join_lab(server.addr, &lab.join_code, "Ana").await;
    let facilitator = facilitate(server.addr, &lab).await;
    let (jpeg, stripped) = camera_jpeg(b"stored before the crash");
    let id = sha256_hex(&jpeg);
    assert_stored(
        &put(server.addr, &lab, &observer, &jpeg).await,
        201,
        &id,
        stripped.len(),
    );
    // No graceful shutdown: only what was on disk at the 201 survives.
    server.kill().await.unwrap();

    let server = within("restart", ServerProcess::spawn(dir.path()))
        .await
        .unwrap();
    let served = get(server.addr, &lab, &id, Some(&facilitator)).await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.header("content-type"), Some("image/jpeg"));
    assert_eq!(served.bytes, stripped);
}
