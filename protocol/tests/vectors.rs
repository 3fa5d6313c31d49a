//! The protocol crate against frames and ids captured from the JS reference implementation
//! (automerge-repo 2.5.6) and from samod 0.16: `tests/fixtures/protocol-vectors/` (its README.md
//! describes the format).
//!
//! For every binary frame: `decode` must accept it (or, for the deliberately broken ones, reject
//! it with the right [`DecodeError`]), `encode` must write the same value as the capture's
//! `decoded` JSON (minus the `undefined` fields, which we omit), and the message must survive
//! `decode(encode(m))`. The `data` of `sync`/`request` frames must be an Automerge sync message
//! that automerge 0.12 re-encodes byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::str::FromStr;

use ciborium::Value;
use labboard_protocol::{decode, encode, DecodeError, DocumentId, Message};
use serde_json::Value as Json;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/protocol-vectors/"
);

fn load(file: &str) -> Json {
    let path = format!("{VECTORS}{file}");
    let text = fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parsing {path}: {err}"))
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex `{text}`");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .unwrap_or_else(|err| panic!("bad hex `{text}`: {err}"))
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// A common shape for "CBOR as the vectors mean it" and "CBOR as ciborium reads it".

/// A CBOR value with text map keys. Whole floats are stored as [`Norm::Int`], so that a float64
/// `1.0` (cbor-x writes large numbers as floats) equals the integer `1`.
#[derive(Debug, Clone, PartialEq)]
enum Norm {
    Null,
    /// Only from the JSON side (`{"$undefined": true}`); see [`resolve_undefined`].
    Undefined,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<Norm>),
    Map(BTreeMap<String, Norm>),
}

fn number(value: f64) -> Norm {
    // Every whole float below 2^100 converts to i128 exactly.
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e30 {
        #[allow(clippy::cast_possible_truncation)]
        Norm::Int(value as i128)
    } else {
        Norm::Float(value)
    }
}

/// The fixture notation: `{"$bytes": hex}`, `{"$undefined": true}`, `{"$float": n}`.
fn from_json(json: &Json) -> Norm {
    match json {
        Json::Null => Norm::Null,
        Json::Bool(b) => Norm::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Norm::Int(i128::from(u))
            } else if let Some(i) = n.as_i64() {
                Norm::Int(i128::from(i))
            } else {
                number(n.as_f64().expect("a JSON number is an f64"))
            }
        }
        Json::String(s) => Norm::Text(s.clone()),
        Json::Array(items) => Norm::Array(items.iter().map(from_json).collect()),
        Json::Object(map) => {
            if map.len() == 1 {
                if let Some(hex) = map.get("$bytes") {
                    return Norm::Bytes(unhex(hex.as_str().expect("$bytes holds hex text")));
                }
                if let Some(flag) = map.get("$undefined") {
                    assert_eq!(flag, &Json::Bool(true), "odd $undefined marker");
                    return Norm::Undefined;
                }
                if let Some(n) = map.get("$float") {
                    return number(n.as_f64().expect("$float holds a number"));
                }
            }
            Norm::Map(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// What ciborium reads. It reads both `null` and `undefined` (`f7`) as [`Value::Null`].
fn from_cbor(value: &Value) -> Norm {
    match value {
        Value::Null => Norm::Null,
        Value::Bool(b) => Norm::Bool(*b),
        Value::Integer(i) => Norm::Int(i128::from(*i)),
        Value::Float(f) => number(*f),
        Value::Text(s) => Norm::Text(s.clone()),
        Value::Bytes(b) => Norm::Bytes(b.clone()),
        Value::Array(items) => Norm::Array(items.iter().map(from_cbor).collect()),
        Value::Map(entries) => {
            let mut map = BTreeMap::new();
            for (key, value) in entries {
                let Value::Text(key) = key else {
                    panic!("non-text map key {key:?}");
                };
                let previous = map.insert(key.clone(), from_cbor(value));
                assert!(previous.is_none(), "duplicate map key `{key}`");
            }
            Norm::Map(map)
        }
        other => panic!("unexpected CBOR item {other:?}"),
    }
}

/// How to read `undefined`: as `null` (what the raw frame holds, as ciborium sees it) or as
/// "field absent" (what our encoder writes: it omits absent optionals).
#[derive(Clone, Copy)]
enum Undefined {
    AsNull,
    Absent,
}

fn resolve_undefined(norm: Norm, mode: Undefined) -> Norm {
    match norm {
        Norm::Undefined => match mode {
            Undefined::AsNull => Norm::Null,
            Undefined::Absent => panic!("`undefined` outside a map cannot be omitted"),
        },
        Norm::Array(items) => Norm::Array(
            items
                .into_iter()
                .map(|item| resolve_undefined(item, mode))
                .collect(),
        ),
        Norm::Map(map) => Norm::Map(
            map.into_iter()
                .filter(|(_, v)| !matches!((v, mode), (Norm::Undefined, Undefined::Absent)))
                .map(|(k, v)| (k, resolve_undefined(v, mode)))
                .collect(),
        ),
        other => other,
    }
}

fn cbor_norm(bytes: &[u8]) -> Result<Norm, String> {
    ciborium::from_reader::<Value, _>(bytes)
        .map(|value| from_cbor(&value))
        .map_err(|err| err.to_string())
}

#[test]
fn the_comparison_is_not_vacuous() {
    let json: Json = serde_json::from_str(
        r#"{"a": {"$float": 2.0}, "b": {"$undefined": true}, "c": {"$bytes": "0aff"}}"#,
    )
    .unwrap();
    let norm = from_json(&json);
    // {"a": 2, "c": h'0aff'}
    let absent = cbor_norm(&unhex("a26161026163420aff")).unwrap();
    assert_eq!(resolve_undefined(norm.clone(), Undefined::Absent), absent);
    assert_ne!(resolve_undefined(norm.clone(), Undefined::AsNull), absent);
    // {"a": 2.5, "c": h'0aff'}: 2.0 matches an integer 2, but not a float 2.5.
    let other = cbor_norm(&unhex("a26161f941006163420aff")).unwrap();
    assert_ne!(resolve_undefined(norm.clone(), Undefined::Absent), other);
    // {"a": 2, "c": [10, 255]}: an array of integers is not a byte string.
    let array = cbor_norm(&unhex("a26161026163820a18ff")).unwrap();
    assert_ne!(resolve_undefined(norm, Undefined::Absent), array);
}

// ---------------------------------------------------------------------------------------------
// Frames.

/// What a capture file should hold; the counts make sure no frame is silently skipped.
struct Expect {
    file: &'static str,
    /// Binary frames (records with `hex`).
    frames: usize,
    /// Frames `decode` must reject.
    invalid: usize,
    /// `sync` and `request` frames, whose `data` is checked with automerge.
    sync_like: usize,
    /// Frames samod 0.16 rejects but we accept (see [`samod_rejects_but_we_accept`]).
    samod_only_rejects: usize,
}

/// The frames that are deliberately not protocol messages, and the error they must produce.
fn expected_failure(file: &str, seq: Option<u64>) -> Option<fn(&DecodeError) -> bool> {
    match (file, seq) {
        // `ff fe fd`: a lone "break" byte, not a CBOR item at all (cbor-x: "unsupported
        // simple 31"; the JS server closes the socket).
        ("handshake-edge-cases.json", Some(12)) => Some(|err| matches!(err, DecodeError::Cbor(_))),
        _ => None,
    }
}

/// samod 0.16 requires `supportedProtocolVersions` in `join`; the JS server (and we) read it as
/// absent, i.e. `["1"]` (spec 2.4). Such a frame must decode to a `join` without versions.
fn samod_rejects_but_we_accept(samod_error: &str, message: &Message) -> bool {
    samod_error == "missing field: supportedProtocolVersions"
        && matches!(
            message,
            Message::Join {
                supported_protocol_versions: None,
                ..
            }
        )
}

#[derive(Default, Debug, PartialEq)]
struct Seen {
    frames: usize,
    invalid: usize,
    sync_like: usize,
    samod_only_rejects: usize,
}

/// Checks one capture file; returns what it saw and a list of problems.
fn check_file(file: &str) -> (Seen, Vec<String>) {
    let json = load(file);
    let frames = json["frames"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no `frames` array"));
    let mut seen = Seen::default();
    let mut problems = Vec::new();

    for frame in frames {
        let Some(hex) = frame.get("hex") else {
            // Keep-alive and close events carry no payload.
            assert_ne!(
                frame.get("wsFrame").and_then(Json::as_str),
                Some("binary"),
                "{file}: a binary frame without `hex`: {frame}"
            );
            continue;
        };
        let seq = frame.get("seq").and_then(Json::as_u64);
        let label = match (seq, frame.get("name").and_then(Json::as_str)) {
            (Some(seq), _) => format!("{file} seq {seq}"),
            (None, Some(name)) => format!("{file} `{name}`"),
            (None, None) => format!("{file} frame {}", seen.frames),
        };
        seen.frames += 1;
        let bytes = unhex(hex.as_str().expect("`hex` is text"));
        if let Some(length) = frame.get("length").and_then(Json::as_u64) {
            assert_eq!(
                bytes.len() as u64,
                length,
                "{label}: `length` disagrees with `hex`"
            );
        }
        let samod_error = frame
            .get("samod016")
            .and_then(|s| s.get("error"))
            .and_then(Json::as_str);

        if let Some(is_right_error) = expected_failure(file, seq) {
            seen.invalid += 1;
            assert!(
                frame.get("decoded").is_none() && frame.get("decodeError").is_some(),
                "{label}: the fixture does not mark this frame as undecodable"
            );
            assert!(samod_error.is_some(), "{label}: samod is said to accept it");
            match decode(&bytes) {
                Err(err) if is_right_error(&err) => {}
                other => problems.push(format!("{label}: expected a CBOR error, got {other:?}")),
            }
            continue;
        }

        let decoded = frame
            .get("decoded")
            .unwrap_or_else(|| panic!("{label}: no `decoded` and not listed as invalid"));
        let wanted = from_json(decoded);

        // The fixture's JSON and the raw frame agree (this checks the comparison itself).
        match cbor_norm(&bytes) {
            Ok(raw) if raw == resolve_undefined(wanted.clone(), Undefined::AsNull) => {}
            other => problems.push(format!(
                "{label}: the raw frame reads as {other:?}, the fixture says {decoded}"
            )),
        }

        let message = match decode(&bytes) {
            Ok(message) => message,
            Err(err) => {
                problems.push(format!("{label}: decode failed: {err:?}"));
                continue;
            }
        };

        if let Some(samod_error) = samod_error {
            if samod_rejects_but_we_accept(samod_error, &message) {
                seen.samod_only_rejects += 1;
            } else {
                problems.push(format!(
                    "{label}: samod rejects it ({samod_error}), we decode {message:?}"
                ));
            }
        }

        let reencoded = encode(&message);
        let expected = resolve_undefined(wanted, Undefined::Absent);
        match cbor_norm(&reencoded) {
            Ok(ours) if ours == expected => {}
            other => problems.push(format!(
                "{label}: encode(decode(frame)) reads as {other:?}, expected {expected:?}"
            )),
        }
        match decode(&reencoded) {
            Ok(again) if again == message => {}
            other => problems.push(format!(
                "{label}: decode(encode(m)) = {other:?}, m = {message:?}"
            )),
        }

        if let Message::Sync { data, .. } | Message::Request { data, .. } = &message {
            seen.sync_like += 1;
            let fixture = frame.get("automerge012SyncMessageDecode");
            assert_eq!(
                fixture.and_then(|f| f.get("reencodesIdentically")),
                Some(&Json::Bool(true)),
                "{label}: the fixture does not say automerge re-encodes this message"
            );
            match automerge::sync::Message::decode(data) {
                Ok(sync) => {
                    let again = sync.encode();
                    if &again != data {
                        problems.push(format!(
                            "{label}: automerge re-encodes {} as {}",
                            to_hex(data),
                            to_hex(&again)
                        ));
                    }
                }
                Err(err) => problems.push(format!("{label}: automerge rejects data: {err}")),
            }
        }
    }
    (seen, problems)
}

fn check(expect: &Expect) {
    let (seen, problems) = check_file(expect.file);
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(
        seen,
        Seen {
            frames: expect.frames,
            invalid: expect.invalid,
            sync_like: expect.sync_like,
            samod_only_rejects: expect.samod_only_rejects,
        },
        "{}: not the expected number of frames",
        expect.file
    );
}

#[test]
fn session1_frames() {
    check(&Expect {
        file: "session1.json",
        frames: 24,
        invalid: 0,
        sync_like: 16,
        samod_only_rejects: 0,
    });
}

#[test]
fn session2_reconnect_frames() {
    check(&Expect {
        file: "session2-reconnect.json",
        frames: 16,
        invalid: 0,
        sync_like: 10,
        samod_only_rejects: 0,
    });
}

#[test]
fn handshake_edge_case_frames() {
    check(&Expect {
        file: "handshake-edge-cases.json",
        frames: 11,
        invalid: 1,
        sync_like: 1,
        samod_only_rejects: 1,
    });
}

#[test]
fn samod_server_session_frames() {
    check(&Expect {
        file: "session-samod-server.json",
        frames: 31,
        invalid: 0,
        sync_like: 16,
        samod_only_rejects: 1,
    });
}

#[test]
fn samod_encoding_frames() {
    check(&Expect {
        file: "samod-encodings.json",
        frames: 7,
        invalid: 0,
        sync_like: 0,
        samod_only_rejects: 0,
    });
}

// ---------------------------------------------------------------------------------------------
// Document ids and Automerge URLs.

fn field<'a>(json: &'a Json, path: &[&str]) -> &'a Json {
    path.iter().fold(json, |json, key| &json[*key])
}

#[test]
fn document_ids_match_samod_and_urls_match_js() {
    let json = load("document-ids.json");
    let entries = json["entries"].as_array().expect("`entries` array");
    let (mut ids_accepted, mut ids_rejected, mut legacy_uuids) = (0, 0, 0);
    let (mut urls_accepted, mut urls_rejected) = (0, 0);

    for entry in entries {
        let input = entry["input"].as_str().expect("`input` is text");
        let kind = entry["kind"].as_str().expect("`kind` is text");
        let samod = field(entry, &["samod016", "DocumentId::from_str"]);
        let ours = DocumentId::from_str(input);

        if kind == "legacyUuid" {
            // samod-core converts a hyphenated UUID string into a DocumentId; we deliberately do
            // not: only the bs58check form travels on the wire (JS `isValidDocumentId` rejects
            // it too and converts UUIDs only in `find()`), and accepting two spellings of one id
            // would give it two keys on the server.
            assert!(samod.get("ok").is_some(), "{input}: samod rejects it");
            assert!(ours.is_err(), "{input}: accepted a legacy UUID: {ours:?}");
            legacy_uuids += 1;
        } else if let Some(samod_text) = samod.get("ok") {
            // Must accept exactly what samod accepts, with the same 16 bytes.
            let id = ours.unwrap_or_else(|err| panic!("{input}: samod accepts it, we say {err}"));
            assert_eq!(
                Some(to_hex(id.as_bytes()).as_str()),
                samod["bytesHex"].as_str(),
                "{input}: other bytes than samod"
            );
            assert_eq!(
                id.to_string(),
                input,
                "Display does not reproduce the input"
            );
            assert_eq!(Some(id.to_string().as_str()), samod_text.as_str());
            ids_accepted += 1;
        } else {
            // Includes 15- and 32-byte payloads, which JS `isValidDocumentId` accepts (it does
            // not check the length) but samod and we reject.
            assert!(
                samod.get("error").is_some(),
                "{input}: samod result missing"
            );
            assert!(
                ours.is_err(),
                "{input}: samod rejects it, we accept {ours:?}"
            );
            ids_rejected += 1;
        }

        // URLs: accepted exactly when JS `isValidAutomergeUrl` accepts them and the id is a
        // 16-byte payload. (samod's `/path` URLs are not JS URLs; JS and we reject them.)
        let js = &entry["js"];
        let parsed = &js["parseAutomergeUrl"];
        let js_accepts = js["isValidAutomergeUrl"] == Json::Bool(true)
            && parsed["binaryDocumentIdHex"]
                .as_str()
                .is_some_and(|hex| hex.len() == 32);
        match DocumentId::from_url(input) {
            Ok(id) => {
                assert!(js_accepts, "{input}: JS rejects this URL, we accept {id:?}");
                assert_eq!(Some(id.to_string().as_str()), parsed["documentId"].as_str());
                assert_eq!(
                    Some(to_hex(id.as_bytes()).as_str()),
                    parsed["binaryDocumentIdHex"].as_str()
                );
                if !input.contains('#') {
                    assert_eq!(id.url(), input, "url() does not reproduce the input");
                }
                urls_accepted += 1;
            }
            Err(err) => {
                assert!(!js_accepts, "{input}: JS accepts this URL, we say {err}");
                if kind == "automergeUrl" {
                    urls_rejected += 1;
                }
            }
        }
    }

    assert_eq!(entries.len(), 22, "entries");
    assert_eq!((ids_accepted, ids_rejected, legacy_uuids), (6, 15, 1));
    assert_eq!((urls_accepted, urls_rejected), (6, 2));
}

// ---------------------------------------------------------------------------------------------
// Hand-made frames for the encoder quirks of spec 1.2 that the captures do not contain.

/// A minimal CBOR head (major type and argument).
fn head(major: u8, n: u64) -> Vec<u8> {
    let major = major << 5;
    match n {
        0..=23 => vec![major | n as u8],
        24..=0xff => vec![major | 24, n as u8],
        0x100..=0xffff => [vec![major | 25], (n as u16).to_be_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => [vec![major | 26], (n as u32).to_be_bytes().to_vec()].concat(),
        _ => [vec![major | 27], n.to_be_bytes().to_vec()].concat(),
    }
}

fn text(s: &str) -> Vec<u8> {
    [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}

fn bstr(b: &[u8]) -> Vec<u8> {
    [head(2, b.len() as u64), b.to_vec()].concat()
}

fn float64(f: f64) -> Vec<u8> {
    [vec![0xfb], f.to_be_bytes().to_vec()].concat()
}

const UNDEFINED: [u8; 1] = [0xf7];
const NULL: [u8; 1] = [0xf6];

/// A map with cbor-x's 16-bit length header (`b9 00 NN`); values are already encoded.
fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xb9];
    out.extend((entries.len() as u16).to_be_bytes());
    for (key, value) in entries {
        out.extend(text(key));
        out.extend(value);
    }
    out
}

fn array(items: &[Vec<u8>]) -> Vec<u8> {
    [head(4, items.len() as u64), items.concat()].concat()
}

const ZERO_ID: &str = "11111111111111114Ki9Gx";

fn ephemeral_with_count(count: Vec<u8>) -> Vec<u8> {
    map(&[
        ("type", text("ephemeral")),
        ("senderId", text("a")),
        ("targetId", text("b")),
        ("count", count),
        ("sessionId", text("s")),
        ("documentId", text(ZERO_ID)),
        ("data", bstr(&[1, 2])),
    ])
}

#[test]
fn undefined_and_null_are_absent_everywhere() {
    let frame = map(&[
        ("type", text("remote-subscription-change")),
        ("senderId", text("a")),
        ("targetId", text("b")),
        ("add", UNDEFINED.to_vec()),
        ("remove", NULL.to_vec()),
    ]);
    assert_eq!(
        decode(&frame),
        Ok(Message::RemoteSubscriptionChange {
            sender_id: "a".into(),
            target_id: "b".into(),
            add: None,
            remove: None,
        })
    );
    let frame = map(&[
        ("type", text("error")),
        ("senderId", UNDEFINED.to_vec()),
        ("targetId", NULL.to_vec()),
        ("message", text("m")),
    ]);
    assert_eq!(
        decode(&frame),
        Ok(Message::Error {
            sender_id: None,
            target_id: None,
            message: "m".into(),
        })
    );
    let frame = map(&[
        ("type", text("join")),
        ("senderId", text("a")),
        ("peerMetadata", UNDEFINED.to_vec()),
        ("supportedProtocolVersions", NULL.to_vec()),
    ]);
    assert_eq!(
        decode(&frame),
        Ok(Message::Join {
            sender_id: "a".into(),
            peer_metadata: None,
            supported_protocol_versions: None,
        })
    );
    // A required field is not optional because it is undefined.
    let frame = map(&[("type", text("leave")), ("senderId", UNDEFINED.to_vec())]);
    assert!(
        matches!(decode(&frame), Err(DecodeError::Invalid { ref kind, .. }) if kind == "leave"),
        "{:?}",
        decode(&frame)
    );
}

#[test]
fn counts_may_be_floats_but_not_fractions_or_negative() {
    let count_of = |frame: &[u8]| match decode(frame) {
        Ok(Message::Ephemeral { count, .. }) => Ok(count),
        Ok(other) => panic!("not an ephemeral: {other:?}"),
        Err(err) => Err(err),
    };
    assert_eq!(count_of(&ephemeral_with_count(head(0, 7))), Ok(7));
    assert_eq!(
        count_of(&ephemeral_with_count(head(0, u64::MAX))),
        Ok(u64::MAX)
    );
    // cbor-x writes numbers above 2^32-1 as float64.
    assert_eq!(
        count_of(&ephemeral_with_count(float64(8_589_934_592.0))),
        Ok(8_589_934_592)
    );
    assert_eq!(count_of(&ephemeral_with_count(float64(3.0))), Ok(3));
    for bad in [
        float64(1.5),
        float64(-1.0),
        float64(f64::NAN),
        float64(f64::INFINITY),
        float64(18_446_744_073_709_551_616.0),
        head(1, 0), // -1
        text("1"),
    ] {
        let result = count_of(&ephemeral_with_count(bad.clone()));
        assert!(
            matches!(result, Err(DecodeError::Invalid { ref kind, .. }) if kind == "ephemeral"),
            "count {}: {result:?}",
            to_hex(&bad)
        );
    }
}

#[test]
fn timestamps_may_be_floats_or_integers() {
    let frame = |timestamp: Vec<u8>| {
        map(&[
            ("type", text("remote-heads-changed")),
            ("senderId", text("a")),
            ("targetId", text("b")),
            ("documentId", text(ZERO_ID)),
            (
                "newHeads",
                map(&[(
                    "storage",
                    map(&[("heads", array(&[text("h")])), ("timestamp", timestamp)]),
                )]),
            ),
        ])
    };
    for (encoded, expected) in [
        (float64(1_767_225_600_123.0), 1_767_225_600_123.0),
        (head(0, 1_767_225_600_123), 1_767_225_600_123.0),
        (head(0, 5), 5.0),
    ] {
        match decode(&frame(encoded.clone())) {
            Ok(Message::RemoteHeadsChanged { new_heads, .. }) => {
                assert_eq!(new_heads.len(), 1);
                assert_eq!(new_heads["storage"].timestamp, expected);
                assert_eq!(new_heads["storage"].heads, ["h"]);
            }
            other => panic!("timestamp {}: {other:?}", to_hex(&encoded)),
        }
    }
}

#[test]
fn document_ids_may_be_raw_bytes_as_samod_allows() {
    let id = DocumentId::from_str("148vjpuxLmPtrT3kP4TEueSfUbc").unwrap();
    let frame = |document_id: Vec<u8>| {
        map(&[
            ("type", text("doc-unavailable")),
            ("senderId", text("a")),
            ("targetId", text("b")),
            ("documentId", document_id),
        ])
    };
    let expected = Message::DocUnavailable {
        sender_id: "a".into(),
        target_id: "b".into(),
        document_id: id,
    };
    assert_eq!(decode(&frame(bstr(id.as_bytes()))), Ok(expected.clone()));
    assert_eq!(decode(&frame(text(&id.to_string()))), Ok(expected));
    for bad in [
        bstr(&id.as_bytes()[..15]),
        text("148vjpuxLmPtrT3kP4TEueSfUba"),
        text("00112233-4455-4677-8899-aabbccddeeff"),
        text(""),
        head(0, 1),
    ] {
        let result = decode(&frame(bad.clone()));
        assert!(
            matches!(result, Err(DecodeError::Invalid { ref kind, .. }) if kind == "doc-unavailable"),
            "documentId {}: {result:?}",
            to_hex(&bad)
        );
    }
}

#[test]
fn unknown_keys_are_skipped() {
    let frame = map(&[
        ("type", text("sync")),
        ("senderId", text("a")),
        (
            "extra",
            map(&[("nested", array(&[head(0, 1), NULL.to_vec()]))]),
        ),
        ("targetId", text("b")),
        ("documentId", text(ZERO_ID)),
        ("data", bstr(&[0x42, 0, 0, 0, 0])),
        ("zzz", UNDEFINED.to_vec()),
    ]);
    let message = decode(&frame).unwrap();
    assert_eq!(
        message,
        Message::Sync {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DocumentId::from_bytes([0; 16]),
            data: vec![0x42, 0, 0, 0, 0],
        }
    );
    // ... and not written back.
    let reencoded = cbor_norm(&encode(&message)).unwrap();
    let Norm::Map(keys) = reencoded else {
        panic!("not a map")
    };
    assert_eq!(
        keys.keys().map(String::as_str).collect::<Vec<_>>(),
        ["data", "documentId", "senderId", "targetId", "type"]
    );
}
