//! Property tests for the codec: every message survives `decode(encode(m))`, and `decode` never
//! panics, neither on arbitrary bytes nor on damaged encodings of real messages.

use std::collections::BTreeSet;

use ciborium::Value;
use labboard_protocol::message::MESSAGE_TYPES;
use labboard_protocol::{
    decode, encode, DecodeError, DocumentId, Message, PeerId, PeerMetadata, RemoteHeads,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Short ASCII names (like real peer and storage ids) and arbitrary Unicode text.
fn text() -> BoxedStrategy<String> {
    prop_oneof!["[a-zA-Z0-9-]{0,24}", any::<String>(), Just(String::new()),].boxed()
}

fn peer_id() -> BoxedStrategy<PeerId> {
    text().prop_map(PeerId::new).boxed()
}

fn document_id() -> BoxedStrategy<DocumentId> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(DocumentId::from_bytes),
        Just(DocumentId::from_bytes([0; 16])),
        Just(DocumentId::from_bytes([0xff; 16])),
    ]
    .boxed()
}

fn data() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..64), vec(any::<u8>(), 0..2048)].boxed()
}

/// Small counts, counts around the u32 boundary (where cbor-x switches to floats) and any u64.
fn count() -> BoxedStrategy<u64> {
    prop_oneof![
        0u64..16,
        (u64::from(u32::MAX) - 2)..=(u64::from(u32::MAX) + 2),
        any::<u64>(),
        Just(u64::MAX),
    ]
    .boxed()
}

/// Finite timestamps: realistic whole milliseconds and any finite float (subnormals, -0.0, ...).
fn timestamp() -> BoxedStrategy<f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    // Every integer below 2^53 is exactly representable.
    #[allow(clippy::cast_precision_loss)]
    fn whole(ms: u64) -> f64 {
        ms as f64
    }
    prop_oneof![
        (0u64..(1 << 53)).prop_map(whole),
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
    ]
    .boxed()
}

fn peer_metadata() -> BoxedStrategy<Option<PeerMetadata>> {
    option::of((option::of(text()), option::of(any::<bool>())).prop_map(
        |(storage_id, is_ephemeral)| PeerMetadata {
            storage_id,
            is_ephemeral,
        },
    ))
    .boxed()
}

fn strings() -> BoxedStrategy<Vec<String>> {
    vec(text(), 0..4).boxed()
}

fn remote_heads() -> BoxedStrategy<RemoteHeads> {
    (strings(), timestamp())
        .prop_map(|(heads, timestamp)| RemoteHeads { heads, timestamp })
        .boxed()
}

/// Any message, of any of the ten variants.
fn message() -> BoxedStrategy<Message> {
    prop_oneof![
        (peer_id(), peer_metadata(), option::of(strings())).prop_map(
            |(sender_id, peer_metadata, supported_protocol_versions)| Message::Join {
                sender_id,
                peer_metadata,
                supported_protocol_versions,
            }
        ),
        (peer_id(), peer_id(), peer_metadata(), text()).prop_map(
            |(sender_id, target_id, peer_metadata, selected_protocol_version)| Message::Peer {
                sender_id,
                target_id,
                peer_metadata,
                selected_protocol_version,
            }
        ),
        (peer_id(), peer_id(), document_id(), data()).prop_map(
            |(sender_id, target_id, document_id, data)| Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            }
        ),
        (peer_id(), peer_id(), document_id(), data()).prop_map(
            |(sender_id, target_id, document_id, data)| Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
        ),
        (peer_id(), peer_id(), document_id()).prop_map(|(sender_id, target_id, document_id)| {
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            }
        }),
        (peer_id(), peer_id(), count(), text(), document_id(), data()).prop_map(
            |(sender_id, target_id, count, session_id, document_id, data)| {
                Message::Ephemeral {
                    sender_id,
                    target_id,
                    count,
                    session_id,
                    document_id,
                    data,
                }
            }
        ),
        (option::of(peer_id()), option::of(peer_id()), text()).prop_map(
            |(sender_id, target_id, message)| Message::Error {
                sender_id,
                target_id,
                message,
            }
        ),
        peer_id().prop_map(|sender_id| Message::Leave { sender_id }),
        (
            peer_id(),
            peer_id(),
            option::of(strings()),
            option::of(strings())
        )
            .prop_map(|(sender_id, target_id, add, remove)| {
                Message::RemoteSubscriptionChange {
                    sender_id,
                    target_id,
                    add,
                    remove,
                }
            }),
        (
            peer_id(),
            peer_id(),
            document_id(),
            btree_map(text(), remote_heads(), 0..4)
        )
            .prop_map(|(sender_id, target_id, document_id, new_heads)| {
                Message::RemoteHeadsChanged {
                    sender_id,
                    target_id,
                    document_id,
                    new_heads,
                }
            }),
    ]
    .boxed()
}

/// One way to damage a frame.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<Index>().prop_map(Mutation::Remove),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
    if frame.is_empty() {
        if let Mutation::Insert(_, byte) = mutation {
            frame.push(*byte);
        }
        return;
    }
    let len = frame.len();
    match mutation {
        Mutation::FlipBit(at, bit) => frame[at.index(len)] ^= 1 << bit,
        Mutation::SetByte(at, byte) => frame[at.index(len)] = *byte,
        Mutation::Insert(at, byte) => frame.insert(at.index(len + 1), *byte),
        Mutation::Remove(at) => {
            frame.remove(at.index(len));
        }
        Mutation::Truncate(at) => frame.truncate(at.index(len)),
    }
}

/// Field names of the protocol (and a few others), so that generated maps look like messages.
const KEYS: [&str; 18] = [
    "senderId",
    "targetId",
    "documentId",
    "data",
    "peerMetadata",
    "supportedProtocolVersions",
    "selectedProtocolVersion",
    "count",
    "sessionId",
    "message",
    "add",
    "remove",
    "newHeads",
    "storageId",
    "isEphemeral",
    "heads",
    "timestamp",
    "unknownKey",
];

/// Arbitrary CBOR, biased towards what messages contain.
fn cbor_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Integer(i.into())),
        any::<u64>().prop_map(|u| Value::Integer(u.into())),
        any::<f64>().prop_map(Value::Float),
        text().prop_map(Value::Text),
        Just(Value::Text("11111111111111114Ki9Gx".to_owned())),
        vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        any::<[u8; 16]>().prop_map(|b| Value::Bytes(b.to_vec())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((prop::sample::select(&KEYS[..]), inner), 0..6).prop_map(|entries| {
                Value::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| (Value::Text(k.to_owned()), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// Whatever `decode` accepts, `encode` writes in a form that decodes to the same message again.
/// (Bytes are compared rather than messages: a damaged float may decode as NaN.)
fn assert_reencodes(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = decode(frame) {
        let first = encode(&message);
        let again = decode(&first);
        prop_assert!(
            again.is_ok(),
            "{message:?} re-encoded does not decode: {again:?}"
        );
        prop_assert_eq!(encode(&again.unwrap()), first);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_message_round_trips(message in message()) {
        let frame = encode(&message);
        prop_assert_eq!(decode(&frame), Ok(message.clone()));

        // One CBOR map whose `type` is the message kind, and nothing after it.
        let mut reader = frame.as_slice();
        let value: Value = ciborium::from_reader(&mut reader).expect("valid CBOR");
        prop_assert!(reader.is_empty(), "{} trailing bytes", reader.len());
        let Value::Map(entries) = value else {
            return Err(TestCaseError::fail("not a map"));
        };
        let kind = entries.iter().find_map(|(k, v)| match (k, v) {
            (Value::Text(k), Value::Text(v)) if k == "type" => Some(v.as_str()),
            _ => None,
        });
        prop_assert_eq!(kind, Some(message.kind()));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(frame in vec(any::<u8>(), 0..512)) {
        assert_reencodes(&frame)?;
    }

    #[test]
    fn decode_never_panics_on_damaged_frames(
        message in message(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut frame = encode(&message);
        for mutation in &mutations {
            apply(&mut frame, mutation);
        }
        assert_reencodes(&frame)?;
    }

    /// A map with a known `type` and arbitrary fields either decodes or is reported as an
    /// invalid message of that type.
    #[test]
    fn message_shaped_maps_decode_or_are_invalid(
        kind in prop::sample::select(&MESSAGE_TYPES[..]),
        fields in vec((prop::sample::select(&KEYS[..]), cbor_value()), 0..10),
    ) {
        let mut entries = vec![(Value::Text("type".to_owned()), Value::Text(kind.to_owned()))];
        entries.extend(fields.into_iter().map(|(k, v)| (Value::Text(k.to_owned()), v)));
        let mut frame = Vec::new();
        ciborium::into_writer(&Value::Map(entries), &mut frame).expect("CBOR of a Value");
        match decode(&frame) {
            Ok(message) => prop_assert_eq!(message.kind(), kind),
            Err(DecodeError::Invalid { kind: reported, .. }) => prop_assert_eq!(reported, kind),
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
        assert_reencodes(&frame)?;
    }

    #[test]
    fn decode_never_panics_on_truncated_frames(message in message(), cut in any::<Index>()) {
        let frame = encode(&message);
        let cut = cut.index(frame.len());
        // A strict prefix of one CBOR item is never a whole item.
        prop_assert!(decode(&frame[..cut]).is_err());
    }
}

/// The generator really produces every variant, and optional fields both present and absent.
#[test]
fn the_generator_covers_every_variant() {
    let strategy = message();
    let mut runner = TestRunner::deterministic();
    let mut kinds = BTreeSet::new();
    let (mut join_with_meta, mut join_without_meta) = (false, false);
    let (mut error_with_sender, mut error_without_sender) = (false, false);
    let mut big_count = false;
    for _ in 0..2000 {
        let message = strategy.new_tree(&mut runner).unwrap().current();
        kinds.insert(message.kind());
        match &message {
            Message::Join { peer_metadata, .. } => {
                join_with_meta |= peer_metadata.is_some();
                join_without_meta |= peer_metadata.is_none();
            }
            Message::Error { sender_id, .. } => {
                error_with_sender |= sender_id.is_some();
                error_without_sender |= sender_id.is_none();
            }
            Message::Ephemeral { count, .. } => big_count |= *count > u64::from(u32::MAX),
            _ => {}
        }
    }
    assert_eq!(kinds, MESSAGE_TYPES.into_iter().collect::<BTreeSet<_>>());
    assert!(join_with_meta && join_without_meta);
    assert!(error_with_sender && error_without_sender);
    assert!(big_count);
}

/// The limits the property tests rely on, spelt out.
#[test]
fn extreme_values_round_trip() {
    let peer = PeerId::from("p");
    let document = DocumentId::from_bytes([0xff; 16]);
    let messages = [
        Message::Ephemeral {
            sender_id: peer.clone(),
            target_id: peer.clone(),
            count: u64::MAX,
            session_id: String::new(),
            document_id: document,
            data: Vec::new(),
        },
        Message::RemoteHeadsChanged {
            sender_id: peer.clone(),
            target_id: peer,
            document_id: document,
            new_heads: [
                ("max".to_owned(), f64::MAX),
                ("min".to_owned(), f64::MIN_POSITIVE / 2.0),
                ("negative zero".to_owned(), -0.0),
                ("now".to_owned(), 1_767_225_600_000.0),
            ]
            .into_iter()
            .map(|(storage, timestamp)| {
                (
                    storage,
                    RemoteHeads {
                        heads: vec!["h".to_owned()],
                        timestamp,
                    },
                )
            })
            .collect(),
        },
    ];
    for message in messages {
        assert_eq!(decode(&encode(&message)), Ok(message));
    }
}
