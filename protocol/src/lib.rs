//! Labboard's wire protocol: the automerge-repo WebSocket protocol, version 1.
//!
//! The flow, as a server sees it:
//!
//! 1. A client opens a WebSocket and sends [`Message::Join`] with its [`PeerId`]; the server
//!    answers [`Message::Peer`] with its own id and selects protocol version `"1"`.
//! 2. For each document the client wants, it sends [`Message::Sync`] (it has the document) or
//!    [`Message::Request`] (it wants it). `data` carries one Automerge sync message; the two sides
//!    exchange `sync` messages until both have the same heads. A request for a document that
//!    exists nowhere is answered [`Message::DocUnavailable`].
//! 3. [`Message::Ephemeral`] payloads (presence) are relayed to the document's other peers.
//! 4. A peer that rejects what it received sends [`Message::Error`] and closes.
//!
//! This crate holds the messages ([`message`]), their CBOR encoding ([`codec`]), the ids
//! ([`ids`]) and the shape of a lab's board document ([`board`]). It does no I/O, except for the optional Rust client behind the `client` feature.

pub mod board;
#[cfg(feature = "client")]
pub mod client;
pub mod codec;
pub mod ids;
pub mod message;

pub use codec::{decode, encode, DecodeError};
pub use ids::{DocumentId, IdError, PeerId};
pub use message::{Message, PeerMetadata, RemoteHeads, PROTOCOL_VERSION};
