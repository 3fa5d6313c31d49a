//! The way from a document actor to a connection: a bounded queue the actor never waits on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use labboard_protocol::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a connection closed for reading too slowly is told, first.
pub const TOO_FAR_BEHIND: &str = "too far behind";

/// Messages queued for one connection. Its task writes them before it reads the phone's next
/// frame, even while it waits for a busy actor, so the queue only grows while a write to the
/// phone is blocked: a phone that falls this far behind has stopped reading, and is disconnected
/// (it resyncs when it comes back) rather than letting its queue grow without bound.
pub const OUTBOX_CAPACITY: usize = 512;

/// Bytes of messages queued for one connection before it counts as too far behind, whatever
/// their number: a few whole-board messages to a stalled phone must not pin much memory.
pub const OUTBOX_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Bytes an outgoing item costs in the queue: its payload plus a little for ids and framing.
fn weight(out: &Outgoing) -> usize {
    const OVERHEAD: usize = 128;
    OVERHEAD
        + match out {
            Outgoing::Message(message) => match &**message {
                Message::Sync { data, .. }
                | Message::Request { data, .. }
                | Message::Ephemeral { data, .. } => data.len(),
                _ => 0,
            },
            Outgoing::Fail(text) => text.len(),
        }
}
/// What an actor asks a connection to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this message. Boxed: the queue's first block of slots is allocated with every
    /// connection, and a message inline would make each slot, and so that block, four times
    /// larger (about 3 KiB more per idle phone).
    Message(Box<Message>),
    /// Send an `error` with this text and close the connection.
    Fail(String),
}

/// Tells a connection to close, with the first reason given.
#[derive(Debug, Default)]
pub struct Kick {
    token: CancellationToken,
    reason: OnceLock<String>,
}

impl Kick {
    pub fn fire(&self, reason: impl Into<String>) {
        // Only the first reason counts; later ones describe the same close.
        let _first = self.reason.set(reason.into());
        self.token.cancel();
    }

    pub async fn fired(&self) -> &str {
        self.token.cancelled().await;
        self.reason.get().map_or("closed", String::as_str)
    }
}

/// The sending side, cloned into every document the connection is attached to.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    kick: Arc<Kick>,
    queued_bytes: Arc<AtomicUsize>,
}

/// The connection's side: what actors queued, in order.
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Outgoing>,
    queued_bytes: Arc<AtomicUsize>,
}

impl OutboxReceiver {
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let out = self.rx.recv().await?;
        self.queued_bytes.fetch_sub(weight(&out), Ordering::Relaxed);
        Some(out)
    }

    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let out = self.rx.try_recv().ok()?;
        self.queued_bytes.fetch_sub(weight(&out), Ordering::Relaxed);
        Some(out)
    }
}

impl Outbox {
    pub fn new() -> (Self, OutboxReceiver, Arc<Kick>) {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let kick = Arc::new(Kick::default());
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                kick: Arc::clone(&kick),
                queued_bytes: Arc::clone(&queued_bytes),
            },
            OutboxReceiver { rx, queued_bytes },
            kick,
        )
    }

    /// Queues without waiting. Returns false if the connection is gone or was too far behind,
    /// in which case it has been told to close.
    pub fn deliver(&self, out: Outgoing) -> bool {
        let size = weight(&out);
        let queued = self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size;
        if queued > OUTBOX_MAX_BYTES {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            crate::ops::metrics().outbox_dropped.inc();
            self.kick.fire(format!(
                "{TOO_FAR_BEHIND}: {queued} bytes waiting to be sent"
            ));
            return false;
        }
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                crate::ops::metrics().outbox_dropped.inc();
                self.kick.fire(format!(
                    "{TOO_FAR_BEHIND}: {OUTBOX_CAPACITY} messages waiting to be sent"
                ));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                false
            }
        }
    }

    /// Asks the connection to send an `error` and close; closes it anyway if it is too far behind
    /// to queue that.
    pub fn fail(&self, text: impl Into<String>) {
        let text = text.into();
        if !self.deliver(Outgoing::Fail(text.clone())) {
            self.kick.fire(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use labboard_protocol::{DocumentId, PeerId};

    fn sync(bytes: usize) -> Outgoing {
        Outgoing::Message(Box::new(Message::Sync {
            sender_id: PeerId::from("server"),
            target_id: PeerId::from("phone"),
            document_id: DocumentId::random(),
            data: vec![0; bytes],
        }))
    }

    #[tokio::test]
    async fn a_full_outbox_by_bytes_kicks_the_connection() {
        let (outbox, mut rx, kick) = Outbox::new();
        // Four of these, with their overhead, are just over the limit.
        let big = OUTBOX_MAX_BYTES / 4;
        for _ in 0..3 {
            assert!(outbox.deliver(sync(big)));
        }
        // Reading one frees its bytes again.
        assert!(rx.recv().await.is_some());
        assert!(outbox.deliver(sync(big)));
        assert!(!kick.token.is_cancelled());
        assert!(!outbox.deliver(sync(big)));
        assert!(kick.fired().await.contains("bytes waiting"));
    }

    #[tokio::test]
    async fn a_full_outbox_by_count_kicks_the_connection() {
        let (outbox, _rx, kick) = Outbox::new();
        for _ in 0..OUTBOX_CAPACITY {
            assert!(outbox.deliver(sync(1)));
        }
        assert!(!outbox.deliver(sync(1)));
        assert!(kick.fired().await.contains("messages waiting"));
    }
}
