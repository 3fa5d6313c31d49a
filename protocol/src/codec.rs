//! `encode` and `decode`: one [`Message`] to and from the payload of one binary frame.

use ciborium::Value;

use crate::message::{Message, MESSAGE_TYPES};

/// Why a frame is not a protocol message. The text is meant for the peer that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not valid CBOR: {0}")]
    Cbor(String),
    #[error("frame is not a CBOR map")]
    NotAMap,
    #[error("message has no `type` text field")]
    MissingType,
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("invalid `{kind}` message: {reason}")]
    Invalid { kind: String, reason: String },
}

/// Decodes one frame. Never panics, whatever the input.
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    match ciborium::from_reader::<Message, _>(frame) {
        Ok(message) => Ok(message),
        Err(err) => Err(classify(frame, err)),
    }
}

/// Encodes one message as minimal CBOR, `data` as a byte string.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_size_hint(message));
    ciborium::into_writer(message, &mut out)
        .expect("serialising a Message into a Vec cannot fail: no I/O, no unsupported types");
    out
}

fn encoded_size_hint(message: &Message) -> usize {
    let data = match message {
        Message::Sync { data, .. }
        | Message::Request { data, .. }
        | Message::Ephemeral { data, .. } => data.len(),
        _ => 0,
    };
    data + 128
}

/// Works out, on the error path only, which part of the frame is wrong.
fn classify(frame: &[u8], err: ciborium::de::Error<std::io::Error>) -> DecodeError {
    let value: Value = match ciborium::from_reader(frame) {
        Ok(value) => value,
        Err(cbor) => return DecodeError::Cbor(describe(&cbor)),
    };
    let Value::Map(entries) = value else {
        return DecodeError::NotAMap;
    };
    let kind = entries.iter().find_map(|(key, value)| match (key, value) {
        (Value::Text(key), Value::Text(kind)) if key == "type" => Some(kind.clone()),
        _ => None,
    });
    match kind {
        None => DecodeError::MissingType,
        Some(kind) if !MESSAGE_TYPES.contains(&kind.as_str()) => DecodeError::UnknownType(kind),
        Some(kind) => DecodeError::Invalid {
            kind,
            reason: describe(&err),
        },
    }
}

fn describe(err: &ciborium::de::Error<std::io::Error>) -> String {
    match err {
        ciborium::de::Error::Io(io) => format!("truncated ({io})"),
        ciborium::de::Error::Syntax(offset) => format!("syntax error at byte {offset}"),
        ciborium::de::Error::Semantic(Some(offset), text) => format!("{text} (at byte {offset})"),
        ciborium::de::Error::Semantic(None, text) => text.clone(),
        ciborium::de::Error::RecursionLimitExceeded => "nested too deeply".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DocumentId, PeerId};

    fn sync() -> Message {
        Message::Sync {
            sender_id: PeerId::from("alice"),
            target_id: PeerId::from("server"),
            document_id: DocumentId::from_bytes([7; 16]),
            data: vec![0x42, 0, 0, 1, 0, 0, 0, 2, 2, 0x84],
        }
    }

    #[test]
    fn data_is_a_byte_string() {
        let bytes = encode(&sync());
        // 0x4a = byte string of length 10, followed by the payload itself.
        let needle = [0x4a, 0x42, 0, 0, 1, 0, 0, 0, 2, 2, 0x84];
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
        assert_eq!(decode(&bytes), Ok(sync()));
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(decode(&[0xff, 0x00]), Err(DecodeError::Cbor(_))));
        assert!(matches!(decode(&[]), Err(DecodeError::Cbor(_))));
        assert_eq!(decode(&[0x01]), Err(DecodeError::NotAMap));
        // {"a": 1}
        assert_eq!(
            decode(&[0xa1, 0x61, b'a', 0x01]),
            Err(DecodeError::MissingType)
        );
        // {"type": "hello"}
        let unknown = [
            0xa1, 0x64, b't', b'y', b'p', b'e', 0x65, b'h', b'e', b'l', b'l', b'o',
        ];
        assert_eq!(
            decode(&unknown),
            Err(DecodeError::UnknownType("hello".into()))
        );
        // {"type": "sync"} without the other fields
        let partial = [
            0xa1, 0x64, b't', b'y', b'p', b'e', 0x64, b's', b'y', b'n', b'c',
        ];
        assert!(
            matches!(decode(&partial), Err(DecodeError::Invalid { ref kind, .. }) if kind == "sync")
        );
    }
}
