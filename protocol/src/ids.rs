//! Identifiers on the wire: document ids, `automerge:` URLs and peer ids.
//!
//! A [`DocumentId`] is 16 random bytes. On the wire it travels as base58check text (Bitcoin
//! alphabet, 4-byte double-SHA-256 checksum), exactly as `@automerge/automerge-repo` writes it;
//! users see it inside an `automerge:` URL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of raw bytes in a document id (a UUID v4's worth).
pub const DOCUMENT_ID_BYTES: usize = 16;

/// The scheme prefix of an Automerge URL.
pub const AUTOMERGE_URL_SCHEME: &str = "automerge:";

/// Why a string is not a valid document id or Automerge URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid document id `{0}`: not base58check ({1})")]
    NotBase58Check(String, String),
    #[error("invalid document id `{0}`: expected {DOCUMENT_ID_BYTES} bytes, found {1}")]
    WrongLength(String, usize),
    #[error("invalid automerge URL `{0}`: {1}")]
    BadUrl(String, &'static str),
}

/// A document's identity: 16 bytes, shown as base58check text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; DOCUMENT_ID_BYTES]);

impl DocumentId {
    /// A new random id with UUID v4 version and variant bits, as the JS client makes them.
    pub fn random() -> Self {
        let mut bytes: [u8; DOCUMENT_ID_BYTES] = rand::random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(bytes)
    }

    pub const fn from_bytes(bytes: [u8; DOCUMENT_ID_BYTES]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; DOCUMENT_ID_BYTES] {
        &self.0
    }

    /// The `automerge:` URL of this document (no heads).
    pub fn url(&self) -> String {
        format!("{AUTOMERGE_URL_SCHEME}{self}")
    }

    /// Parses an `automerge:<id>` URL, ignoring a `#heads` view suffix as the JS client does
    /// when it looks a document up.
    pub fn from_url(url: &str) -> Result<Self, IdError> {
        let rest = url
            .strip_prefix(AUTOMERGE_URL_SCHEME)
            .ok_or_else(|| IdError::BadUrl(url.to_owned(), "missing `automerge:` scheme"))?;
        let mut parts = rest.split('#');
        let id = parts.next().unwrap_or_default();
        parts.next();
        if parts.next().is_some() {
            return Err(IdError::BadUrl(url.to_owned(), "more than one `#`"));
        }
        id.parse()
            .map_err(|_| IdError::BadUrl(url.to_owned(), "invalid document id"))
    }
}

impl FromStr for DocumentId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(text)
            .with_check(None)
            .into_vec()
            .map_err(|err| IdError::NotBase58Check(text.to_owned(), err.to_string()))?;
        let array: [u8; DOCUMENT_ID_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| IdError::WrongLength(text.to_owned(), bytes.len()))?;
        Ok(Self(array))
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl Serialize for DocumentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DocumentId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base58check document id")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DocumentId, E> {
                text.parse().map_err(E::custom)
            }
            // samod also accepts the 16 raw bytes.
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<DocumentId, E> {
                let array: [u8; DOCUMENT_ID_BYTES] = bytes.try_into().map_err(|_| {
                    E::custom(format!(
                        "invalid document id: expected {DOCUMENT_ID_BYTES} bytes, found {}",
                        bytes.len()
                    ))
                })?;
                Ok(DocumentId(array))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A peer's self-chosen name in the protocol (`senderId`, `targetId`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(String);

impl PeerId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh random id in the JS client's style (`peer-` and base36).
    pub fn random() -> Self {
        const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let suffix: String = (0..10)
            .map(|_| DIGITS[rand::random_range(0..DIGITS.len())] as char)
            .collect();
        Self(format!("peer-{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

impl From<&str> for PeerId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_round_trip() {
        let id: DocumentId = "148vjpuxLmPtrT3kP4TEueSfUbc".parse().unwrap();
        assert_eq!(
            id.as_bytes(),
            &[
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x46, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
        assert_eq!(id.to_string(), "148vjpuxLmPtrT3kP4TEueSfUbc");
        assert_eq!(
            DocumentId::from_bytes([0; 16]).to_string(),
            "11111111111111114Ki9Gx"
        );
    }

    #[test]
    fn random_ids_are_uuid_v4_shaped_and_round_trip() {
        for _ in 0..100 {
            let id = DocumentId::random();
            assert_eq!(id.as_bytes()[6] >> 4, 4);
            assert_eq!(id.as_bytes()[8] >> 6, 2);
            assert_eq!(id.to_string().parse::<DocumentId>().unwrap(), id);
            assert_eq!(DocumentId::from_url(&id.url()).unwrap(), id);
        }
    }

    #[test]
    fn bad_ids_say_why() {
        let err = "148vjpuxLmPtrT3kP4TEueSfUba"
            .parse::<DocumentId>()
            .unwrap_err();
        assert!(
            err.to_string().contains("148vjpuxLmPtrT3kP4TEueSfUba"),
            "{err}"
        );
        let err = "1iDdSMcCGx2nBtNcMijyPob9n"
            .parse::<DocumentId>()
            .unwrap_err();
        assert_eq!(
            err,
            IdError::WrongLength("1iDdSMcCGx2nBtNcMijyPob9n".into(), 15)
        );
        assert!(DocumentId::from_url("148vjpuxLmPtrT3kP4TEueSfUbc").is_err());
        assert!(DocumentId::from_url("automerge:148vjpuxLmPtrT3kP4TEueSfUbc#a#b").is_err());
    }
}
