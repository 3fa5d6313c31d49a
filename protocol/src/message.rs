//! The messages of the automerge-repo WebSocket protocol, version 1.
//!
//! Each message is one CBOR map in one binary WebSocket frame, tagged by its `type` key. Field
//! names are the camelCase keys of the wire format; optional fields are omitted when absent and
//! read as absent when `null` or `undefined` (the JS encoder writes `undefined`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{DocumentId, PeerId};

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// What a peer says about its storage in `join` and `peer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerMetadata {
    /// Identifies the peer's persistent store; shared by all tabs on one device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_id: Option<String>,
    /// "Do not bother remembering me" (a peer without storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_ephemeral: Option<bool>,
}

/// The heads one storage has of one document, in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteHeads {
    /// bs58check-encoded change hashes.
    pub heads: Vec<String>,
    /// Milliseconds since the epoch; JS writes it as a float64.
    pub timestamp: f64,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// Client -> server, first frame of a connection.
    #[serde(rename_all = "camelCase")]
    Join {
        sender_id: PeerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer_metadata: Option<PeerMetadata>,
        /// Absent means `["1"]`, as the JS server assumes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supported_protocol_versions: Option<Vec<String>>,
    },
    /// Server -> client, the one reply to `join`.
    #[serde(rename_all = "camelCase")]
    Peer {
        sender_id: PeerId,
        target_id: PeerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer_metadata: Option<PeerMetadata>,
        selected_protocol_version: String,
    },
    /// One step of the Automerge sync loop for one document.
    #[serde(rename_all = "camelCase")]
    Sync {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        /// An encoded Automerge sync message; never empty.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Like `sync`, from a peer that does not have the document: "or say `doc-unavailable`".
    #[serde(rename_all = "camelCase")]
    Request {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// "I do not have this document."
    #[serde(rename_all = "camelCase")]
    DocUnavailable {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
    },
    /// Best-effort payload (presence, cursors) relayed to the document's other peers.
    #[serde(rename_all = "camelCase")]
    Ephemeral {
        /// The original author, kept unchanged when relayed.
        sender_id: PeerId,
        target_id: PeerId,
        #[serde(deserialize_with = "unsigned_or_float")]
        count: u64,
        session_id: String,
        document_id: DocumentId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Sent right before the sender closes the connection.
    #[serde(rename_all = "camelCase")]
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_id: Option<PeerId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_id: Option<PeerId>,
        message: String,
    },
    /// Advisory "about to disconnect".
    #[serde(rename_all = "camelCase")]
    Leave { sender_id: PeerId },
    /// Opt-in heads gossip: which storages' heads the sender wants to hear about.
    #[serde(rename_all = "camelCase")]
    RemoteSubscriptionChange {
        sender_id: PeerId,
        target_id: PeerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        add: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remove: Option<Vec<String>>,
    },
    /// Opt-in heads gossip: the heads some storages have of a document.
    #[serde(rename_all = "camelCase")]
    RemoteHeadsChanged {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        new_heads: BTreeMap<String, RemoteHeads>,
    },
}

/// Every `type` this crate knows, in wire spelling.
pub const MESSAGE_TYPES: [&str; 10] = [
    "join",
    "peer",
    "sync",
    "request",
    "doc-unavailable",
    "ephemeral",
    "error",
    "leave",
    "remote-subscription-change",
    "remote-heads-changed",
];

impl Message {
    /// The wire `type` of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Sync { .. } => "sync",
            Message::Request { .. } => "request",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::Error { .. } => "error",
            Message::Leave { .. } => "leave",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
        }
    }

    /// The `senderId`, where the message has one.
    pub fn sender_id(&self) -> Option<&PeerId> {
        match self {
            Message::Join { sender_id, .. }
            | Message::Peer { sender_id, .. }
            | Message::Sync { sender_id, .. }
            | Message::Request { sender_id, .. }
            | Message::DocUnavailable { sender_id, .. }
            | Message::Ephemeral { sender_id, .. }
            | Message::Leave { sender_id }
            | Message::RemoteSubscriptionChange { sender_id, .. }
            | Message::RemoteHeadsChanged { sender_id, .. } => Some(sender_id),
            Message::Error { sender_id, .. } => sender_id.as_ref(),
        }
    }

    /// The `targetId`, where the message has one.
    pub fn target_id(&self) -> Option<&PeerId> {
        match self {
            Message::Peer { target_id, .. }
            | Message::Sync { target_id, .. }
            | Message::Request { target_id, .. }
            | Message::DocUnavailable { target_id, .. }
            | Message::Ephemeral { target_id, .. }
            | Message::RemoteSubscriptionChange { target_id, .. }
            | Message::RemoteHeadsChanged { target_id, .. } => Some(target_id),
            Message::Error { target_id, .. } => target_id.as_ref(),
            Message::Join { .. } | Message::Leave { .. } => None,
        }
    }

    /// The document the message is about, where it is about one.
    pub fn document_id(&self) -> Option<&DocumentId> {
        match self {
            Message::Sync { document_id, .. }
            | Message::Request { document_id, .. }
            | Message::DocUnavailable { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(document_id),
            _ => None,
        }
    }
}

/// Accepts an unsigned integer, or a float64 holding one: cbor-x writes numbers above 2^32-1 as
/// floats.
fn unsigned_or_float<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative whole number")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("expected a count, found {v}")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
            // 2^64 as f64; every whole float below it converts exactly.
            const LIMIT: f64 = 18_446_744_073_709_551_616.0;
            if v >= 0.0 && v.fract() == 0.0 && v < LIMIT {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(v as u64)
            } else {
                Err(E::custom(format!("expected a count, found {v}")))
            }
        }
    }
    deserializer.deserialize_any(Visitor)
}
