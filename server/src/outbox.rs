//! The way from a document actor to a connection: a bounded queue the actor never waits on.

use std::sync::{Arc, OnceLock};

use labboard_protocol::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages queued for one connection. A phone that falls this far behind is disconnected (it
/// resyncs when it comes back) rather than letting its queue grow without bound.
pub const OUTBOX_CAPACITY: usize = 512;

/// What an actor asks a connection to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this message.
    Message(Message),
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
}

impl Outbox {
    pub fn new() -> (Self, mpsc::Receiver<Outgoing>, Arc<Kick>) {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let kick = Arc::new(Kick::default());
        (
            Self {
                tx,
                kick: Arc::clone(&kick),
            },
            rx,
            kick,
        )
    }

    /// Queues without waiting. Returns false if the connection is gone or was too far behind,
    /// in which case it has been told to close.
    pub fn deliver(&self, out: Outgoing) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick.fire(format!(
                    "too far behind: {OUTBOX_CAPACITY} messages waiting to be sent"
                ));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
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
