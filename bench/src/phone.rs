//! Simulated phones: where they connect, how a lab's board comes to exist, and what a note is.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ReadDoc, Value, ROOT};
use labboard_protocol::board::{new_board, LabInfo};
use labboard_protocol::client::{Client, DocHandle};
use labboard_protocol::{DocumentId, PeerId};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::http;

/// Bound on one phone connecting and fetching its board. The client's own handshake bound is
/// 10 s; a board fetch on loopback takes milliseconds unless the server is drowning.
pub const FIND_TIMEOUT: Duration = Duration::from_secs(30);

/// Phones connecting (or API calls) in flight at once during set-up: enough to set up a
/// thousand phones in seconds, few enough not to look like a connection flood.
pub const SETUP_CONCURRENCY: usize = 32;

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A labboard server: labs through its API, one token per phone.
    Labboard {
        /// Where the API calls go (a node, or the proxy in front of the nodes).
        authority: String,
        organizer_token: String,
        /// Where phones connect: `authority` when empty; with several, phone `slot` of each
        /// lab connects to `sync[slot % len]` (a lab's phones spread over the nodes).
        sync: Vec<String>,
        /// How the server side is set up, for the heading (nodes, database, proxy).
        setup: Option<String>,
    },
    /// Any automerge-repo sync server: boards created by the bench, one URL for everyone.
    SyncUrl { url: String },
}

/// One lab's board, ready for phones to join.
#[derive(Debug, Clone)]
pub struct Lab {
    pub doc_id: DocumentId,
    /// The lab's id in the API, for a labboard target.
    pub lab_id: Option<String>,
    /// The join code, for a labboard target.
    join_code: Option<String>,
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Labboard {
                authority, setup, ..
            } => match setup {
                Some(setup) => format!("labboard http://{authority}, {setup}"),
                None => format!("labboard http://{authority}"),
            },
            Target::SyncUrl { url } => format!("sync server {url}"),
        }
    }

    /// The URL the load goes to.
    pub fn url(&self) -> String {
        match self {
            Target::Labboard { authority, .. } => format!("http://{authority}"),
            Target::SyncUrl { url } => url.clone(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Labboard { .. } => "labboard",
            Target::SyncUrl { .. } => "sync-url",
        }
    }

    /// Creates a lab's board: through the API, or as a board document the bench uploads.
    pub async fn create_lab(&self, title: &str) -> anyhow::Result<Lab> {
        match self {
            Target::Labboard {
                authority,
                organizer_token,
                ..
            } => {
                let lab = http::create_lab(authority, organizer_token, title).await?;
                Ok(Lab {
                    doc_id: lab.doc_id,
                    lab_id: Some(lab.lab_id),
                    join_code: Some(lab.join_code),
                })
            }
            Target::SyncUrl { url } => {
                let info = LabInfo {
                    title: title.to_owned(),
                    school: "Bench school".into(),
                    grade: "2".into(),
                    date: String::new(),
                };
                let client =
                    Client::connect(url, PeerId::new(format!("bench-seeder-{}", unique())))
                        .await
                        .with_context(|| format!("connecting to {url} to create a board"))?;
                let doc = client.create(new_board(&info, ActorId::random()));
                tokio::time::timeout(FIND_TIMEOUT, doc.wait_synced())
                    .await
                    .context("the server did not acknowledge a new board in time")?
                    .context("uploading a new board")?;
                let doc_id = doc.id();
                client.close().await;
                Ok(Lab {
                    doc_id,
                    lab_id: None,
                    join_code: None,
                })
            }
        }
    }

    /// The WebSocket URL a phone called `name` uses for `lab` (a labboard phone joins first).
    pub async fn phone_url(&self, lab: &Lab, name: &str) -> anyhow::Result<String> {
        Ok(self.seat(lab, name).await?.url)
    }

    /// What a phone called `name` needs to write in `lab`: its URL, and on labboard the author
    /// id its token grants (the server refuses notes under any other).
    pub async fn seat(&self, lab: &Lab, name: &str) -> anyhow::Result<Seat> {
        self.seat_at(lab, name, 0).await
    }

    /// [`Target::seat`] for the phone in seat `slot` of its lab, which picks its node when the
    /// lab's phones are spread over several.
    pub async fn seat_at(&self, lab: &Lab, name: &str, slot: usize) -> anyhow::Result<Seat> {
        match self {
            Target::Labboard {
                authority, sync, ..
            } => {
                let code = lab
                    .join_code
                    .as_deref()
                    .context("a labboard lab has a code")?;
                let joined = http::join(authority, code, name).await?;
                let (node, sync_authority) = if sync.is_empty() {
                    (0, authority)
                } else {
                    let node = slot % sync.len();
                    (node, &sync[node])
                };
                // The lab in the address lets a proxy send every phone of a lab to one node.
                let url = match &lab.lab_id {
                    Some(lab_id) => format!(
                        "ws://{sync_authority}/sync?lab={lab_id}&token={}",
                        joined.token
                    ),
                    None => format!("ws://{sync_authority}/sync?token={}", joined.token),
                };
                Ok(Seat {
                    url,
                    author_id: Some(joined.author_id),
                    token: Some(joined.token),
                    node,
                })
            }
            Target::SyncUrl { url } => Ok(Seat {
                url: url.clone(),
                author_id: None,
                token: None,
                node: 0,
            }),
        }
    }
}

/// Where a phone connects, and who it writes as.
#[derive(Debug, Clone)]
pub struct Seat {
    pub url: String,
    /// The author id a labboard token grants; elsewhere the phone's peer id serves.
    pub author_id: Option<String>,
    /// The labboard token, for the API calls a phone makes (photos).
    pub token: Option<String>,
    /// Which of the target's sync addresses it connects to (0 unless spread over nodes).
    pub node: usize,
}

/// A short id unique within this run, for peer ids.
pub fn unique() -> String {
    DocumentId::random().to_string().chars().take(8).collect()
}

/// One simulated phone: its own WebSocket and its own replica of the board.
#[derive(Clone)]
pub struct Phone {
    pub name: String,
    pub doc: DocHandle,
    /// What its notes carry as `authorId`.
    pub author_id: String,
    /// Its labboard token, for the API calls it makes (photos).
    pub token: Option<String>,
    /// Which of the target's sync addresses it is connected to.
    pub node: usize,
    /// Its WebSocket URL, to connect again.
    pub url: String,
}

impl Phone {
    /// Connects to `url` and fetches the board, within [`FIND_TIMEOUT`].
    pub async fn connect(seat: Seat, name: String, doc_id: DocumentId) -> anyhow::Result<Phone> {
        let peer_id = PeerId::new(format!("bench-{}-{}", name.replace(' ', "-"), unique()));
        let author_id = seat
            .author_id
            .unwrap_or_else(|| peer_id.as_str().to_owned());
        let (token, node, url) = (seat.token, seat.node, seat.url.clone());
        let attempt = async {
            let client = Client::connect(&seat.url, peer_id).await?;
            client.find(doc_id).await
        };
        let doc = tokio::time::timeout(FIND_TIMEOUT, attempt)
            .await
            .with_context(|| format!("{name}: no board within {FIND_TIMEOUT:?}"))?
            .with_context(|| format!("{name}: connecting and fetching the board"))?;
        Ok(Phone {
            name,
            doc,
            author_id,
            token,
            node,
            url,
        })
    }

    pub fn client(&self) -> &Client {
        self.doc.client()
    }

    /// Adds a note as the phone page does: a map under `id` in `notes`, committed as one change.
    pub fn post_note(&self, id: &str, text: &str, index: usize) -> anyhow::Result<()> {
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        let author_id = self.author_id.as_str();
        let category = labboard_protocol::board::DEFAULT_CATEGORIES
            [index % labboard_protocol::board::DEFAULT_CATEGORIES.len()]
        .0;
        self.doc
            .change(|tx| -> anyhow::Result<()> {
                let notes = match tx.get(ROOT, "notes")? {
                    Some((Value::Object(ObjType::Map), notes)) => notes,
                    _ => bail!("the board has no `notes` map"),
                };
                let note = tx.put_object(&notes, id, ObjType::Map)?;
                tx.put(&note, "text", text)?;
                tx.put(&note, "category", category)?;
                tx.put(&note, "authorName", self.name.as_str())?;
                tx.put(&note, "authorId", author_id)?;
                tx.put(&note, "createdAt", created_at)?;
                tx.put_object(&note, "children", ObjType::List)?;
                tx.put_object(&note, "reactions", ObjType::Map)?;
                tx.put(&note, "phase", "lesson-1")?;
                Ok(())
            })
            .with_context(|| format!("{}: posting note {id}", self.name))
    }
}

/// The ids in the board's `notes` map that `known` does not contain.
pub fn new_note_ids(doc: &Automerge, known: &std::collections::HashSet<String>) -> Vec<String> {
    let Ok(Some((Value::Object(ObjType::Map), notes))) = doc.get(ROOT, "notes") else {
        return Vec::new();
    };
    if doc.length(&notes) == known.len() {
        return Vec::new(); // nothing new: notes are only ever added here
    }
    doc.keys(&notes).filter(|id| !known.contains(id)).collect()
}

/// The number of notes on a board.
pub fn note_count(doc: &Automerge) -> usize {
    match doc.get(ROOT, "notes") {
        Ok(Some((Value::Object(ObjType::Map), notes))) => doc.length(&notes),
        _ => 0,
    }
}

/// Runs `tasks` with at most `limit` in flight; the results in order, or the first error.
/// Unfinished tasks are aborted when an error is returned.
pub async fn bounded<T, F>(limit: usize, tasks: Vec<F>) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    let count = tasks.len();
    for (index, task) in tasks.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (index, task.await)
        });
    }
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (index, result) = joined.context("a set-up task panicked")?;
        results[index] = Some(result?);
    }
    results
        .into_iter()
        .map(|result| result.context("a set-up task vanished"))
        .collect()
}

/// Closes every phone's connection, all at once (each bounded by the client's close timeout).
pub async fn close_all(phones: impl IntoIterator<Item = Phone>) {
    let mut set = JoinSet::new();
    for phone in phones {
        set.spawn(async move { phone.client().close().await });
    }
    while set.join_next().await.is_some() {}
}

/// Fails unless `count` is positive; sizes of zero make no sense for any scenario.
pub fn ensure_positive(what: &str, count: usize) -> anyhow::Result<()> {
    if count == 0 {
        bail!("{what} must be at least 1");
    }
    Ok(())
}
