//! What the nodes sharing one PostgreSQL database tell each other, through `LISTEN/NOTIFY`.
//!
//! A node that stores a part of a document notifies [`CHUNKS_CHANNEL`] in the same transaction
//! (so the notification goes out only once the part is committed); one that deletes or ends a lab
//! notifies [`LABS_CHANNEL`]. Every node keeps one connection of its own listening on both and
//! turns what it hears into [`NodeEvent`]s: a node holding that document open takes the new parts
//! in and syncs its own phones; a deleted lab's sockets close everywhere. A listening connection
//! that is lost is made again, and then every open document looks for what it may have missed.
//!
//! With the embedded SQLite store there is one node and none of this runs.

use std::time::Duration;

use futures_util::StreamExt;
use labboard_protocol::DocumentId;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use crate::pg::{Pg, CHUNKS_CHANNEL, LABS_CHANNEL};

/// The first wait before making a lost listening connection again; doubled up to
/// [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// What another node did that this one must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// Another node stored a part of this document.
    Stored(DocumentId),
    /// A lab was deleted: its sockets close, its board stops.
    LabDeleted { lab_id: String, doc_id: DocumentId },
    /// A lab was ended: its board becomes read-only.
    LabEnded { lab_id: String, doc_id: DocumentId },
    /// The node (again) listens: notifications before may have been missed.
    Missed,
}

/// Reads a notification; `None` for one this node sent itself, or one it does not understand
/// (logged: another version of Labboard may share the database).
pub fn parse(channel: &str, payload: &str, own_node: &str) -> Option<NodeEvent> {
    let words: Vec<&str> = payload.split(' ').collect();
    let event = match (channel, words.as_slice()) {
        (CHUNKS_CHANNEL, [doc, _seq, node]) => {
            if *node == own_node {
                return None;
            }
            doc.parse().ok().map(NodeEvent::Stored)
        }
        (LABS_CHANNEL, [what, lab_id, doc, node]) => {
            if *node == own_node {
                return None;
            }
            let doc_id = doc.parse().ok()?;
            let lab_id = (*lab_id).to_owned();
            match *what {
                "deleted" => Some(NodeEvent::LabDeleted { lab_id, doc_id }),
                "ended" => Some(NodeEvent::LabEnded { lab_id, doc_id }),
                _ => None,
            }
        }
        _ => None,
    };
    if event.is_none() {
        tracing::warn!(channel, payload, "notification not understood; ignored");
    }
    event
}

/// Listens until `stop`, sending what it hears on `events`; makes the connection again
/// whenever it is lost, with backoff. Each time it starts listening it sends
/// [`NodeEvent::Missed`].
pub async fn listen(pg: Pg, events: mpsc::Sender<NodeEvent>, stop: CancellationToken) {
    let mut wait = RECONNECT_FIRST;
    let mut lost = false;
    loop {
        let outcome = tokio::select! {
            outcome = listen_once(&pg, &events, lost) => outcome,
            () = stop.cancelled() => return,
        };
        match outcome {
            Listened::Closed => return,
            Listened::Lost { err, heard } => {
                if heard {
                    wait = RECONNECT_FIRST;
                }
                if !lost {
                    crate::ops::metrics().error(crate::ops::ErrorKind::Storage);
                }
                tracing::warn!(error = %err, retry_in = ?wait, "listening to the other nodes failed; connecting again");
                lost = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

enum Listened {
    /// Nobody takes events any more: the server is stopping.
    Closed,
    /// The connection failed or was lost; `heard` if it had been listening.
    Lost { err: String, heard: bool },
}

async fn listen_once(pg: &Pg, events: &mpsc::Sender<NodeEvent>, after_loss: bool) -> Listened {
    let (client, mut connection) = match pg.dedicated().await {
        Ok(pair) => pair,
        Err(err) => {
            return Listened::Lost {
                err: err.to_string(),
                heard: false,
            }
        }
    };
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let own_node = pg.node_id().to_owned();
    let statement = format!("LISTEN {CHUNKS_CHANNEL}; LISTEN {LABS_CHANNEL}");
    let subscribe = client.batch_execute(&statement);
    tokio::pin!(subscribe);
    // The connection is driven by polling its messages, the LISTEN with it.
    let mut early = Vec::new();
    loop {
        tokio::select! {
            done = &mut subscribe => match done {
                Ok(()) => break,
                Err(err) => return Listened::Lost { err: err.to_string(), heard: false },
            },
            message = messages.next() => match message {
                Some(Ok(message)) => early.push(message),
                Some(Err(err)) => return Listened::Lost { err: err.to_string(), heard: false },
                None => return Listened::Lost { err: "connection closed".into(), heard: false },
            },
        }
    }
    if after_loss {
        tracing::info!("listening to the other nodes again");
    } else {
        tracing::info!("listening to the other nodes");
    }
    // Boards opened before this connection listened (phones may come as soon as the server
    // serves), or while it was lost, may lack what others stored meanwhile.
    if events.send(NodeEvent::Missed).await.is_err() {
        return Listened::Closed;
    }
    for message in early {
        if !forward(message, events, &own_node).await {
            return Listened::Closed;
        }
    }
    loop {
        match messages.next().await {
            Some(Ok(message)) => {
                if !forward(message, events, &own_node).await {
                    return Listened::Closed;
                }
            }
            Some(Err(err)) => {
                return Listened::Lost {
                    err: err.to_string(),
                    heard: true,
                }
            }
            None => {
                return Listened::Lost {
                    err: "connection closed".into(),
                    heard: true,
                }
            }
        }
    }
}

/// Sends on what a message says; false once nobody takes events.
async fn forward(message: AsyncMessage, events: &mpsc::Sender<NodeEvent>, own_node: &str) -> bool {
    match message {
        AsyncMessage::Notification(note) => match parse(note.channel(), note.payload(), own_node) {
            Some(event) => events.send(event).await.is_ok(),
            None => true,
        },
        AsyncMessage::Notice(notice) => {
            tracing::debug!(notice = %notice, "database notice");
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_read_and_our_own_are_left_out() {
        let doc = DocumentId::random();
        assert_eq!(
            parse(CHUNKS_CHANNEL, &format!("{doc} 17 othernode"), "me"),
            Some(NodeEvent::Stored(doc))
        );
        assert_eq!(parse(CHUNKS_CHANNEL, &format!("{doc} 17 me"), "me"), None);
        assert_eq!(
            parse(LABS_CHANNEL, &format!("deleted lab1 {doc} othernode"), "me"),
            Some(NodeEvent::LabDeleted {
                lab_id: "lab1".into(),
                doc_id: doc
            })
        );
        assert_eq!(
            parse(LABS_CHANNEL, &format!("ended lab1 {doc} othernode"), "me"),
            Some(NodeEvent::LabEnded {
                lab_id: "lab1".into(),
                doc_id: doc
            })
        );
        assert_eq!(
            parse(LABS_CHANNEL, &format!("ended lab1 {doc} me"), "me"),
            None
        );
        for garbage in ["", "x", "notadoc 1 n", "a b c d e"] {
            assert_eq!(parse(CHUNKS_CHANNEL, garbage, "me"), None);
            assert_eq!(parse(LABS_CHANNEL, garbage, "me"), None);
        }
        assert_eq!(
            parse(LABS_CHANNEL, &format!("renamed lab1 {doc} othernode"), "me"),
            None
        );
    }
}
