//! The gate between phones and a board: every change a phone sends is checked before the
//! document sees it.
//!
//! Automerge applies whatever a sync message carries, but not everything it applies can be saved
//! and loaded again, and some of it panics inside automerge. A board must always load, so a
//! change reaches the document only once it has passed, in order:
//!
//! 1. **Framing.** Each chunk parses, its checksum matches its hash, and it is a change (plain or
//!    compressed) or a whole document; documents are opened in a scratch replica and their
//!    changes checked one by one like any other. A change must be encoded as automerge encodes
//!    it: decoded and encoded again, it has the same hash.
//! 2. **Dependencies.** Every dependency is on the board or earlier in the same message. A change
//!    whose dependencies are missing waits, bounded by [`MAX_WAITING_CHANGES`], until they come.
//! 3. **Actor and sequence.** Its `seq` is the next of its actor, and for `seq > 1` the actor's
//!    previous change is in its history: no actor ever has two changes with one `seq`.
//! 4. **Op counters.** It has ops, `start_op` is beyond every op of its history, and all its
//!    counters fit the 32 bits automerge keeps them in ([`MAX_OP_COUNTER`]).
//! 5. **Ops.** Each op refers only to earlier ops of actors the board knows, to objects that exist
//!    (on the board or created earlier in the message), with keys of that object's kind; what it
//!    replaces (`pred`) is a value of the same key or element, and an insert replaces nothing;
//!    marks are refused (the board has no rich text).
//! 6. **Role.** What the sender's token allows (see [`Writer`]): an observer adds notes and edits
//!    or deletes only its own, reacts and calls time-outs as itself, takes back its own running
//!    time-out, ends time-outs, adds child aliases, picks notes and writes next steps as itself
//!    (and changes only its own); the rest of the board is the facilitator's. Nobody deletes or replaces the board's top-level maps.
//! 7. **Photos.** Whoever writes them, a note's `photos` is a list of photo ids (64 lowercase hex
//!    digits) that a change leaves with at most [`board::MAX_NOTE_PHOTOS`] of them, counted on
//!    the board as the change leaves it; `hiddenPhotos` maps photo ids to `true`. Like the rest
//!    of a note, `photos` is its author's; `hiddenPhotos` is the facilitator's, like `hidden`.
//!    Counting reads the note's list on the board once per message (it holds at most a few ids).
//!
//! Checks 2–5 cost what the change costs plus a few lookups, whatever the board's size. A change
//! that fails refuses the whole message: nothing of it reaches the board, and the sender is told
//! why. Refusing rather than answering with a compensating change keeps the board exactly as
//! honest phones made it; an honest phone never makes a change that fails (the web client offers
//! each role only what it may do), so it never loses a note to this.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{
    ActorId, Automerge, Change, ChangeHash, ObjType, Prop, ReadDoc, ScalarValue, Value,
};

use labboard_protocol::board;

use crate::labs::Role;

/// Largest op counter a change may use: automerge keeps op counters in 32 bits and panics on a
/// larger one.
pub const MAX_OP_COUNTER: u64 = u32::MAX as u64;

/// Changes of one connection that may wait for their dependencies. Honest phones leave a change
/// waiting only when a bloom filter false positive made them skip one of its ancestors, which
/// the next round of sync brings; a few hundred is far beyond that.
pub const MAX_WAITING_CHANGES: usize = 512;

/// Bytes of changes one connection may leave waiting: a phone's own notes are a few hundred
/// bytes each, so this is far beyond honest use and keeps a dishonest phone's backlog small.
pub const MAX_WAITING_BYTES: usize = 4 * 1024 * 1024;

/// Changes looked at when a change's actor's previous change is not among its direct
/// dependencies (automerge always puts it there; this is for other writers).
const MAX_ANCESTRY_WALK: usize = 4096;

/// Whether a key at a board's root is part of its structure, which nobody deletes or replaces:
/// `lab`, `schemaVersion` and the collections.
fn is_structure(key: &str) -> bool {
    key == "lab" || key == "schemaVersion" || board::COLLECTIONS.contains(&key)
}

/// Collections whose new entries belong to whoever adds them.
const OWNED_ENTRIES: [&str; 4] = ["notes", "timeouts", "children", "nextSteps"];

/// Fields of a note only the facilitator sets.
const FACILITATOR_NOTE_FIELDS: [&str; 5] = [
    "pinned",
    "highlighted",
    "hidden",
    "clusterId",
    "hiddenPhotos",
];

/// Who sends a change, from the connection's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub role: Role,
    /// The author id the token grants: what this writer's notes, reactions and time-outs carry.
    pub author_id: String,
    /// The display name the token was issued for.
    pub name: String,
}

impl Writer {
    /// The server itself, for what it stored or writes (recovery at load, upgrades): only
    /// whether a change loads matters, no role rule applies. Every token grants an author id,
    /// so no connection is ever this writer.
    pub fn server() -> Self {
        Self {
            role: Role::Facilitator,
            author_id: String::new(),
            name: String::new(),
        }
    }

    fn is_server(&self) -> bool {
        self.role == Role::Facilitator && self.author_id.is_empty()
    }
}

/// Why a message was refused. Sent to its sender as the text of an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("undecodable change data: {0}")]
    Undecodable(String),
    #[error("change {hash} is invalid: {reason}")]
    Invalid { hash: ChangeHash, reason: String },
    #[error("change {hash} is not allowed: {reason}")]
    Forbidden { hash: ChangeHash, reason: String },
    #[error(
        "too many changes waiting for their dependencies (limits {MAX_WAITING_CHANGES} changes, \
         {MAX_WAITING_BYTES} bytes)"
    )]
    TooManyWaiting,
}

/// The last change of each actor on the board: what the next change of that actor must follow.
#[derive(Debug, Clone, Default)]
pub struct Tips {
    actors: HashMap<ActorId, Tip>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tip {
    seq: u64,
    hash: ChangeHash,
    max_op: u64,
}

impl Tips {
    /// Reads every change of the document once (when it is loaded).
    pub fn of(doc: &Automerge) -> Self {
        let mut tips = Self::default();
        for meta in doc.get_changes_meta(&[]) {
            tips.record(meta.actor.as_ref(), meta.seq, meta.hash, meta.max_op);
        }
        tips
    }

    fn record(&mut self, actor: &ActorId, seq: u64, hash: ChangeHash, max_op: u64) {
        let tip = Tip { seq, hash, max_op };
        match self.actors.get_mut(actor) {
            Some(old) if old.seq >= seq => {}
            Some(old) => *old = tip,
            None => {
                self.actors.insert(actor.clone(), tip);
            }
        }
    }

    /// Records changes that reached the document.
    pub fn record_changes<'a>(&mut self, changes: impl IntoIterator<Item = &'a Change>) {
        for change in changes {
            self.record(
                change.actor_id(),
                change.seq(),
                change.hash(),
                change.max_op(),
            );
        }
    }
}

/// Changes of one connection waiting for their dependencies.
#[derive(Debug, Default)]
pub struct Waiting {
    changes: HashMap<ChangeHash, Change>,
}

impl Waiting {
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Replaces each of `heads` that is waiting here by what it waits for, so that the sync
    /// protocol asks the peer for the missing ancestors rather than for the change itself.
    pub fn frontier(&self, heads: &[ChangeHash]) -> Vec<ChangeHash> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<ChangeHash> = heads.to_vec();
        while let Some(hash) = stack.pop() {
            if !seen.insert(hash) {
                continue;
            }
            match self.changes.get(&hash) {
                Some(change) => stack.extend(change.deps().iter().copied()),
                None => out.push(hash),
            }
        }
        out.sort_unstable();
        out
    }
}

/// What passed the gate, in an order the document can apply.
#[derive(Debug, Default)]
pub struct Admitted {
    pub changes: Vec<Change>,
    /// Changes of the message the board already has. Automerge skips them, but whether a
    /// message brought changes at all decides how it reads the message's heads, so they go
    /// along.
    pub known: Vec<Change>,
}

/// Checks every change of a sync message's `changes` for `writer`. On success, the admitted
/// changes are ready to apply (in order) and `tips` already counts them; changes whose
/// dependencies are missing wait in `waiting`. On refusal nothing changes.
pub fn admit<'c>(
    doc: &Automerge,
    tips: &mut Tips,
    waiting: &mut Waiting,
    writer: &Writer,
    chunks: impl Iterator<Item = &'c [u8]>,
) -> Result<Admitted, Refusal> {
    let mut incoming: Vec<Change> = Vec::new();
    for entry in chunks {
        for chunk in split_chunks(entry)? {
            incoming.extend(decode_chunk(chunk)?);
        }
    }
    let mut gate = Gate {
        doc,
        tips: tips.clone(),
        writer,
        admitted: HashMap::new(),
        objects: HashMap::new(),
        written: HashMap::new(),
        photo_lists: HashMap::new(),
    };
    // Every candidate, from this message and from earlier ones of the same peer.
    let mut candidates: HashMap<ChangeHash, Change> = waiting.changes.clone();
    let mut order: Vec<ChangeHash> = waiting.changes.keys().copied().collect();
    let mut known = Vec::new();
    for change in incoming {
        let hash = change.hash();
        if gate.on_board(&hash) {
            known.push(change);
            continue;
        }
        if candidates.contains_key(&hash) {
            continue;
        }
        order.push(hash);
        candidates.insert(hash, change);
    }
    let mut admitted = Vec::new();
    loop {
        let ready: Vec<ChangeHash> = order
            .iter()
            .copied()
            .filter(|hash| {
                candidates
                    .get(hash)
                    .is_some_and(|c| c.deps().iter().all(|dep| gate.known(dep)))
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        for hash in ready {
            let change = candidates
                .remove(&hash)
                .expect("ready changes are candidates");
            gate.check(&change)?;
            admitted.push(change);
        }
        order.retain(|hash| candidates.contains_key(hash));
    }
    let waiting_bytes: usize = candidates.values().map(|c| c.raw_bytes().len()).sum();
    if candidates.len() > MAX_WAITING_CHANGES || waiting_bytes > MAX_WAITING_BYTES {
        return Err(Refusal::TooManyWaiting);
    }
    *tips = gate.tips;
    waiting.changes = candidates;
    Ok(Admitted {
        changes: admitted,
        known,
    })
}

/// Splits one entry of a sync message's change list into chunks by their headers.
fn split_chunks(mut entry: &[u8]) -> Result<Vec<&[u8]>, Refusal> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let bad = |what: &str| Refusal::Undecodable(what.to_owned());
    let mut chunks = Vec::new();
    while !entry.is_empty() {
        if entry.len() < 9 || entry[..4] != MAGIC {
            return Err(bad("not an automerge chunk"));
        }
        let mut length: u64 = 0;
        let mut at = 9;
        let mut shift = 0;
        loop {
            let byte = *entry.get(at).ok_or_else(|| bad("truncated chunk header"))?;
            if shift > 56 {
                return Err(bad("chunk length out of range"));
            }
            length |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| at.checked_add(length))
            .filter(|end| *end <= entry.len())
            .ok_or_else(|| bad("truncated chunk"))?;
        chunks.push(&entry[..end]);
        entry = &entry[end..];
    }
    Ok(chunks)
}

/// The changes one chunk holds.
fn decode_chunk(chunk: &[u8]) -> Result<Vec<Change>, Refusal> {
    const DOCUMENT: u8 = 0;
    const CHANGE: u8 = 1;
    const COMPRESSED: u8 = 2;
    match chunk[8] {
        CHANGE | COMPRESSED => {
            let change = contained(|| Change::try_from(chunk))
                .map_err(Refusal::Undecodable)?
                .map_err(|err| Refusal::Undecodable(err.to_string()))?;
            if change.hash().0[..4] != chunk[4..8] {
                return Err(Refusal::Undecodable(format!(
                    "checksum does not match change {}",
                    change.hash()
                )));
            }
            Ok(vec![change])
        }
        DOCUMENT => {
            // A peer sends its whole document when most of it is new to us; open it on its own
            // and check its changes like any others.
            let scratch = contained(|| Automerge::load(chunk))
                .map_err(Refusal::Undecodable)?
                .map_err(|err| Refusal::Undecodable(format!("document chunk: {err}")))?;
            contained(|| scratch.get_changes(&[])).map_err(Refusal::Undecodable)
        }
        other => Err(Refusal::Undecodable(format!(
            "chunk type {other} is not accepted"
        ))),
    }
}

/// Runs `work`, turning a panic into an error that says where it happened.
pub fn contained<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        format!("automerge panicked: {text}")
    })
}

/// A step in the path from the board's root to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Key(key) => write!(f, "{key}"),
            Step::Index => write!(f, "[]"),
        }
    }
}

/// An object a change writes into.
#[derive(Debug, Clone)]
struct Object {
    typ: ObjType,
    path: Vec<Step>,
    /// Whether it belongs to the writer: a note it wrote or anything inside one, a time-out it
    /// called, or anything it created in this message under those.
    mine: bool,
    /// Created by this message.
    fresh: bool,
    /// Its id on the board; `None` for an object created by this message.
    exid: Option<automerge::ObjId>,
}

/// Why one op cannot pass.
enum Problem {
    Invalid(String),
    Forbidden(String),
}

struct Gate<'a> {
    doc: &'a Automerge,
    tips: Tips,
    writer: &'a Writer,
    /// Changes admitted from this message: (start_op, max_op, deps).
    admitted: HashMap<ChangeHash, (u64, u64, Vec<ChangeHash>)>,
    /// Objects created by admitted changes of this message, and objects looked up on the board.
    objects: HashMap<OpId, Object>,
    /// Values written by this message, by object and map key or sequence element: what later
    /// ops of the message may name as their `pred`.
    written: HashMap<(ObjectId, Key), Vec<OpId>>,
    /// Notes' `photos` lists this message writes into, as the message leaves them so far.
    photo_lists: HashMap<ObjectId, PhotoList>,
}

/// A note's `photos` list as a message leaves it: the elements the board holds, each with the
/// values it still has, and the elements the message inserted and did not delete.
#[derive(Debug, Default)]
struct PhotoList {
    board: Vec<Vec<OpId>>,
    inserted: HashSet<OpId>,
    /// Whether the change being checked inserted into it.
    grew: bool,
}

impl PhotoList {
    fn len(&self) -> usize {
        self.board
            .iter()
            .filter(|values| !values.is_empty())
            .count()
            + self.inserted.len()
    }
}

impl Gate<'_> {
    fn on_board(&self, hash: &ChangeHash) -> bool {
        self.doc.get_change_meta_by_hash(hash).is_some()
    }

    fn known(&self, hash: &ChangeHash) -> bool {
        self.admitted.contains_key(hash) || self.on_board(hash)
    }

    /// (start_op, max_op, deps) of a change on the board or admitted.
    fn meta(&self, hash: &ChangeHash) -> Option<(u64, u64, Vec<ChangeHash>)> {
        if let Some(meta) = self.admitted.get(hash) {
            return Some(meta.clone());
        }
        let meta = self.doc.get_change_meta_by_hash(hash)?;
        Some((meta.start_op, meta.max_op, meta.deps))
    }

    fn check(&mut self, change: &Change) -> Result<(), Refusal> {
        let hash = change.hash();
        let invalid = |reason: String| Refusal::Invalid { hash, reason };
        // No client of ours makes one (automerge commits nothing for an empty transaction),
        // and automerge 0.12 panics applying some.
        if change.is_empty() {
            return Err(invalid("a change without ops".into()));
        }
        let start_op = change.start_op().get();
        let max_op = start_op
            .checked_add(change.len() as u64)
            .map(|end| end - 1)
            .filter(|max| *max <= MAX_OP_COUNTER)
            .ok_or_else(|| invalid(format!("op counters beyond {MAX_OP_COUNTER}")))?;

        // Dependencies are known (only ready changes are checked); their ops come first.
        let mut history_max = 0;
        for dep in change.deps() {
            let (_, dep_max, _) = self
                .meta(dep)
                .ok_or_else(|| invalid(format!("unknown dependency {dep}")))?;
            history_max = history_max.max(dep_max);
        }
        if start_op <= history_max {
            return Err(invalid(format!(
                "start_op {start_op} is not beyond op {history_max} of its history"
            )));
        }

        let actor = change.actor_id();
        let tip = self.tips.actors.get(actor).copied();
        let expected = tip.map_or(1, |tip| tip.seq + 1);
        if change.seq() != expected {
            return Err(invalid(format!(
                "seq {} of actor {actor}, expected {expected}",
                change.seq()
            )));
        }
        if let Some(tip) = tip {
            if !self.descends_from(change.deps(), tip) {
                return Err(invalid(format!(
                    "does not follow change {} of its own actor",
                    tip.hash
                )));
            }
        }

        let expanded = contained(|| change.decode())
            .map_err(|err| invalid(format!("ops could not be decoded: {err}")))?;
        // Automerge writes a change one way; bytes it reads but would not write (columns it
        // does not know, stray actors) are taken in as they are and can leave the board unable
        // to save. What every automerge client sends re-encodes to the same hash.
        let canonical = contained(|| automerge::Change::from(expanded.clone()).hash())
            .map_err(|err| invalid(format!("ops could not be encoded again: {err}")))?;
        if canonical != hash {
            return Err(invalid("not encoded as automerge encodes a change".into()));
        }
        for (index, op) in expanded.operations.iter().enumerate() {
            let own = start_op + index as u64;
            self.check_op(change, own, op)
                .map_err(|problem| match problem {
                    Problem::Invalid(reason) => Refusal::Invalid { hash, reason },
                    Problem::Forbidden(reason) => Refusal::Forbidden { hash, reason },
                })?;
        }
        for list in self.photo_lists.values_mut() {
            let grew = std::mem::take(&mut list.grew);
            if grew && list.len() > board::MAX_NOTE_PHOTOS {
                return Err(Refusal::Forbidden {
                    hash,
                    reason: format!(
                        "a note holds at most {} photos; this change leaves {}",
                        board::MAX_NOTE_PHOTOS,
                        list.len()
                    ),
                });
            }
        }

        self.admitted
            .insert(hash, (start_op, max_op, change.deps().to_vec()));
        self.tips.record(actor, change.seq(), hash, max_op);
        Ok(())
    }

    /// Whether `tip` is an ancestor of a change with `deps`. Changes made after `tip` all have
    /// ops beyond it, so the walk never goes below it.
    fn descends_from(&self, deps: &[ChangeHash], tip: Tip) -> bool {
        if deps.contains(&tip.hash) {
            return true;
        }
        let mut seen = HashSet::new();
        let mut stack = deps.to_vec();
        while let Some(hash) = stack.pop() {
            if hash == tip.hash {
                return true;
            }
            if seen.len() >= MAX_ANCESTRY_WALK || !seen.insert(hash) {
                continue;
            }
            if let Some((start_op, _, deps)) = self.meta(&hash) {
                if start_op > tip.max_op {
                    stack.extend(deps);
                }
            }
        }
        false
    }

    /// Checks that the op at counter `own` of `change` may refer to `id`: an earlier op of an
    /// actor the board knows, or of this change.
    fn reference(&self, change: &Change, own: u64, id: &OpId) -> Result<(), Problem> {
        let counter = id.counter();
        if counter == 0 || counter >= own {
            return Err(Problem::Invalid(format!(
                "op {own} refers to op {counter}, which is not earlier"
            )));
        }
        let actor = id.actor();
        let known = if actor == change.actor_id() {
            counter >= change.start_op().get()
                || self
                    .tips
                    .actors
                    .get(actor)
                    .is_some_and(|tip| counter <= tip.max_op)
        } else {
            self.tips.actors.contains_key(actor)
        };
        if known {
            Ok(())
        } else {
            Err(Problem::Invalid(format!(
                "op {own} refers to op {counter}@{actor}, which does not exist"
            )))
        }
    }

    /// The object an op writes into, from this message or from the board.
    fn object(&mut self, change: &Change, own: u64, obj: &ObjectId) -> Result<Object, Problem> {
        let id = match obj {
            ObjectId::Root => {
                return Ok(Object {
                    typ: ObjType::Map,
                    path: Vec::new(),
                    mine: false,
                    fresh: false,
                    exid: Some(automerge::ROOT),
                })
            }
            ObjectId::Id(id) => id,
        };
        self.reference(change, own, id)?;
        if let Some(object) = self.objects.get(id) {
            return Ok(object.clone());
        }
        let object = self.board_object(id).ok_or_else(|| {
            Problem::Invalid(format!(
                "op {own} writes into {}@{}, which is not an object",
                id.counter(),
                id.actor()
            ))
        })?;
        self.objects.insert(id.clone(), object.clone());
        Ok(object)
    }

    /// An object of the board, with its path and whether it belongs to the writer.
    fn board_object(&self, id: &OpId) -> Option<Object> {
        let (exid, typ) = self
            .doc
            .import(&format!("{}@{}", id.counter(), id.actor()))
            .ok()?;
        let chain = contained(|| self.doc.parents(&exid).map(|parents| parents.path()))
            .ok()?
            .ok()?;
        let path: Vec<Step> = chain
            .iter()
            .map(|(_, prop)| match prop {
                Prop::Map(key) => Step::Key(key.clone()),
                Prop::Seq(_) => Step::Index,
            })
            .collect();
        // The entry of `notes` or `timeouts` this object is, or is inside of.
        let exid_of_object = exid.clone();
        let entry = match chain.get(2) {
            Some((entry, _)) => entry.clone(),
            None => exid,
        };
        let me = self.writer.author_id.as_str();
        let mine = match path.first() {
            Some(Step::Key(root)) if path.len() >= 2 && root == "notes" => {
                self.field(&entry, "authorId").as_deref() == Some(me)
            }
            Some(Step::Key(root)) if path.len() >= 2 && root == "timeouts" => {
                self.field(&entry, "calledById").as_deref() == Some(me)
            }
            Some(Step::Key(root)) if path.len() >= 2 && root == "nextSteps" => {
                self.field(&entry, "authorId").as_deref() == Some(me)
            }
            _ => false,
        };
        Some(Object {
            typ,
            path,
            mine: mine && !me.is_empty(),
            fresh: false,
            exid: Some(exid_of_object),
        })
    }

    /// Whether every value `op` replaces is an entry of a root collection that is the writer's.
    fn all_own_entries(&mut self, change: &Change, own: u64, op: &automerge::legacy::Op) -> bool {
        op.pred.iter().all(|pred| {
            self.object(change, own, &ObjectId::Id(pred.clone()))
                .is_ok_and(|entry| entry.mine && entry.path.len() == 2)
        })
    }

    /// Whether every time-out `op` replaces is still running (has no `endedAt` on the board).
    fn all_running(&mut self, change: &Change, own: u64, op: &automerge::legacy::Op) -> bool {
        op.pred.iter().all(|pred| {
            self.object(change, own, &ObjectId::Id(pred.clone()))
                .is_ok_and(|entry| match &entry.exid {
                    Some(exid) => self.doc.get(exid, "endedAt").ok().flatten().is_none(),
                    None => true,
                })
        })
    }

    /// A string field of a board object.
    fn field(&self, obj: &automerge::ObjId, field: &str) -> Option<String> {
        match self.doc.get(obj, field).ok()??.0 {
            Value::Scalar(value) => match value.as_ref() {
                ScalarValue::Str(text) => Some(text.to_string()),
                _ => None,
            },
            Value::Object(_) => None,
        }
    }

    fn check_op(
        &mut self,
        change: &Change,
        own: u64,
        op: &automerge::legacy::Op,
    ) -> Result<(), Problem> {
        let object = self.object(change, own, &op.obj)?;
        let sequence = matches!(object.typ, ObjType::List | ObjType::Text);
        let key = match (&op.key, sequence) {
            (Key::Map(key), false) if !op.insert => Step::Key(key.to_string()),
            (Key::Seq(element), true) => {
                match element {
                    ElementId::Id(id) => self.reference(change, own, id)?,
                    ElementId::Head if !op.insert => {
                        return Err(Problem::Invalid(format!(
                            "op {own} writes to the head of a sequence without inserting"
                        )))
                    }
                    ElementId::Head => {}
                }
                Step::Index
            }
            _ => {
                return Err(Problem::Invalid(format!(
                    "op {own} uses a key of the wrong kind for its object"
                )))
            }
        };
        for pred in op.pred.iter() {
            self.reference(change, own, pred)?;
        }
        self.check_preds(change, own, op, &object)?;
        match &op.action {
            OpType::MarkBegin(_) | OpType::MarkEnd(_) => {
                return Err(Problem::Invalid(format!(
                    "op {own} is a mark; the board has no rich text"
                )))
            }
            OpType::Increment(_) if op.pred.is_empty() || op.insert => {
                return Err(Problem::Invalid(format!("op {own} increments nothing")))
            }
            OpType::Delete if op.pred.is_empty() || op.insert => {
                return Err(Problem::Invalid(format!("op {own} deletes nothing")))
            }
            _ => {}
        }
        self.allowed(change, own, &object, &key, op)?;
        if matches!(op.action, OpType::Make(_) | OpType::Put(_)) {
            let slot = match (&op.key, op.insert) {
                // An inserted element is named by the op that inserted it.
                (Key::Seq(_), true) => Key::Seq(ElementId::Id(OpId::new(own, change.actor_id()))),
                (key, _) => key.clone(),
            };
            let values = self.written.entry((op.obj.clone(), slot)).or_default();
            values.retain(|value| !op.pred.iter().any(|pred| pred == value));
            values.push(OpId::new(own, change.actor_id()));
        }
        if let OpType::Make(typ) = op.action {
            let mut path = object.path.clone();
            path.push(key);
            // A new entry of `notes`, `timeouts`, `children` or `nextSteps` is the writer's; so is anything
            // made inside something of the writer's.
            let mine = !self.writer.author_id.is_empty()
                && (object.mine
                    || matches!(object.path.as_slice(),
                        [Step::Key(root)] if OWNED_ENTRIES.contains(&root.as_str())));
            self.objects.insert(
                OpId::new(own, change.actor_id()),
                Object {
                    typ,
                    path,
                    mine,
                    fresh: true,
                    exid: None,
                },
            );
        }
        Ok(())
    }

    /// An op's `pred` names the values it replaces: each must be a value of the same map key or
    /// sequence element, as it stood in the change's history. Automerge takes whatever it is
    /// given, and a pred elsewhere leaves the board unable to save.
    fn check_preds(
        &self,
        change: &Change,
        own: u64,
        op: &automerge::legacy::Op,
        object: &Object,
    ) -> Result<(), Problem> {
        if op.pred.is_empty() {
            return Ok(());
        }
        let stray = || {
            Problem::Invalid(format!(
                "op {own} replaces an op that is not a value of what it writes"
            ))
        };
        if op.insert {
            return Err(stray());
        }
        let local = self
            .written
            .get(&(op.obj.clone(), op.key.clone()))
            .map_or(&[][..], Vec::as_slice);
        let unresolved: Vec<&OpId> = op
            .pred
            .iter()
            .filter(|pred| !local.contains(pred))
            .filter(|pred| !matches!(&op.key, Key::Seq(ElementId::Id(element)) if element == *pred))
            .collect();
        if unresolved.is_empty() {
            return Ok(());
        }
        // Values on the board: those of the key now, then (for a change made concurrently with
        // others) those it had in the change's history.
        let (Some(exid), Key::Map(key)) = (&object.exid, &op.key) else {
            return Err(stray());
        };
        let ids = |values: Vec<(automerge::Value<'_>, automerge::ObjId)>| -> Vec<(u64, ActorId)> {
            values
                .into_iter()
                .filter_map(|(_, id)| match id {
                    automerge::ObjId::Id(counter, actor, _) => Some((counter, actor)),
                    automerge::ObjId::Root => None,
                })
                .collect()
        };
        let found = |values: &[(u64, ActorId)], pred: &OpId| {
            values
                .iter()
                .any(|(counter, actor)| *counter == pred.counter() && actor == pred.actor())
        };
        let now = ids(self.doc.get_all(exid, key.as_str()).map_err(|_| stray())?);
        let unresolved: Vec<&OpId> = unresolved
            .into_iter()
            .filter(|pred| !found(&now, pred))
            .collect();
        if unresolved.is_empty() {
            return Ok(());
        }
        let heads = self.board_frontier(change.deps());
        let then = ids(
            contained(|| self.doc.get_all_at(exid, key.as_str(), &heads))
                .map_err(|_| stray())?
                .map_err(|_| stray())?,
        );
        if unresolved.iter().all(|pred| found(&then, pred)) {
            Ok(())
        } else {
            Err(stray())
        }
    }

    /// The changes on the board that `deps` (which may name changes of this message) rest on.
    fn board_frontier(&self, deps: &[ChangeHash]) -> Vec<ChangeHash> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = deps.to_vec();
        while let Some(hash) = stack.pop() {
            if !seen.insert(hash) {
                continue;
            }
            match self.admitted.get(&hash) {
                Some((_, _, deps)) => stack.extend(deps.iter().copied()),
                None => out.push(hash),
            }
        }
        out.sort_unstable();
        out
    }

    /// What a note's photos hold, whoever writes them (the role rules come after): `photos` is
    /// a list of photo ids, `hiddenPhotos` a map of photo ids to `true`.
    fn photo_rules(
        &mut self,
        change: &Change,
        own: u64,
        object: &Object,
        path: &[&str],
        key: &str,
        op: &automerge::legacy::Op,
    ) -> Result<(), Problem> {
        let forbidden = |what: &str| Err(Problem::Forbidden(what.to_owned()));
        match (path, key) {
            (["notes", _], "photos") => match op.action {
                OpType::Make(ObjType::List) | OpType::Delete => Ok(()),
                _ => forbidden("a note's `photos` is a list of photo ids"),
            },
            (["notes", _], "hiddenPhotos") => match op.action {
                OpType::Make(ObjType::Map) | OpType::Delete => Ok(()),
                _ => forbidden("a note's `hiddenPhotos` is a map of photo ids"),
            },
            (["notes", _, "photos"], _) => match &op.action {
                OpType::Put(ScalarValue::Str(id)) if board::is_photo_id(id) => {
                    self.count_photo(change, own, object, op);
                    Ok(())
                }
                OpType::Delete => {
                    self.count_photo(change, own, object, op);
                    Ok(())
                }
                _ => forbidden(
                    "a note's photo is its id: the SHA-256 of the photo in 64 lowercase hex digits",
                ),
            },
            (["notes", _, "hiddenPhotos"], id) => match op.action {
                OpType::Delete => Ok(()),
                OpType::Put(ScalarValue::Boolean(true)) if board::is_photo_id(id) => Ok(()),
                _ => forbidden("`hiddenPhotos` maps photo ids (64 lowercase hex digits) to `true`"),
            },
            (["notes", _, "photos" | "hiddenPhotos", ..], _) => {
                forbidden("a note's photos hold only photo ids")
            }
            _ => Ok(()),
        }
    }

    /// Follows what `op` (a valid write into a note's `photos`) does to the list's length.
    fn count_photo(
        &mut self,
        change: &Change,
        own: u64,
        object: &Object,
        op: &automerge::legacy::Op,
    ) {
        if !self.photo_lists.contains_key(&op.obj) {
            let board = object
                .exid
                .as_ref()
                .map(|exid| self.board_list(exid))
                .unwrap_or_default();
            self.photo_lists.insert(
                op.obj.clone(),
                PhotoList {
                    board,
                    ..PhotoList::default()
                },
            );
        }
        let list = self
            .photo_lists
            .get_mut(&op.obj)
            .expect("the list was just recorded");
        let this = OpId::new(own, change.actor_id());
        if op.insert {
            list.inserted.insert(this);
            list.grew = true;
            return;
        }
        let Key::Seq(ElementId::Id(element)) = &op.key else {
            return;
        };
        let delete = matches!(op.action, OpType::Delete);
        if list.inserted.contains(element) {
            if delete {
                list.inserted.remove(element);
            }
            return;
        }
        for values in &mut list.board {
            if values
                .iter()
                .any(|value| op.pred.iter().any(|p| p == value))
            {
                values.retain(|value| !op.pred.iter().any(|p| p == value));
                if !delete {
                    values.push(this.clone());
                }
            }
        }
    }

    /// The elements of a list on the board, each with the ids of its values.
    fn board_list(&self, exid: &automerge::ObjId) -> Vec<Vec<OpId>> {
        (0..self.doc.length(exid))
            .map(|index| {
                self.doc
                    .get_all(exid, index)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(_, id)| match id {
                        automerge::ObjId::Id(counter, actor, _) => Some(OpId::new(counter, &actor)),
                        automerge::ObjId::Root => None,
                    })
                    .collect()
            })
            .collect()
    }

    /// The role rules (see the module docs).
    fn allowed(
        &mut self,
        change: &Change,
        own: u64,
        object: &Object,
        key: &Step,
        op: &automerge::legacy::Op,
    ) -> Result<(), Problem> {
        let forbidden = |what: &str| Err(Problem::Forbidden(what.to_owned()));
        let replaces = !op.pred.is_empty();
        let path: Vec<&str> = object
            .path
            .iter()
            .map(|step| match step {
                Step::Key(key) => key.as_str(),
                Step::Index => "[]",
            })
            .collect();
        let key_str = match key {
            Step::Key(key) => key.as_str(),
            Step::Index => "[]",
        };

        if self.writer.is_server() {
            return Ok(());
        }
        self.photo_rules(change, own, object, &path, key_str, op)?;
        if self.writer.role == Role::Facilitator {
            // Everything but the board's structure: top-level maps are neither removed nor
            // replaced, since a second `notes` map would hide every note of the first.
            let board = self
                .doc
                .get(automerge::ROOT, "schemaVersion")
                .ok()
                .flatten()
                .is_some();
            if board && path.is_empty() && is_structure(key_str) {
                let exists = self
                    .doc
                    .get(automerge::ROOT, key_str)
                    .ok()
                    .flatten()
                    .is_some();
                let ok = matches!(op.action, OpType::Make(_)) && !replaces && !exists;
                if !ok {
                    return forbidden(&format!("`{key_str}` is part of the board's structure"));
                }
            }
            return Ok(());
        }

        let me = self.writer.author_id.as_str();
        match path.as_slice() {
            // A new note or next step: any id not taken yet. Deleting or replacing one: only
            // one's own.
            [root @ ("notes" | "nextSteps")] => {
                if !replaces {
                    return match op.action {
                        OpType::Make(_) | OpType::Put(_) => Ok(()),
                        _ => forbidden(&format!("`{root}` entries are added as new ones")),
                    };
                }
                if !self.all_own_entries(change, own, op) {
                    return forbidden(&format!("`{root}` entries of others are the facilitator's"));
                }
                Ok(())
            }
            ["notes", _] => match key_str {
                field if FACILITATOR_NOTE_FIELDS.contains(&field) => {
                    forbidden(&format!("`{field}` of a note is the facilitator's"))
                }
                _ if !object.mine => forbidden("notes of others are the facilitator's"),
                "authorId" => match &op.action {
                    OpType::Put(ScalarValue::Str(value)) if value.as_str() == me => Ok(()),
                    _ => forbidden("a note's `authorId` is its author's, as the token says"),
                },
                "reactions" if replaces => forbidden("reactions are each person's own"),
                _ => Ok(()),
            },
            // "I saw that too": one per person, as themselves.
            ["notes", _, "reactions"] => match op.action {
                OpType::Put(_) | OpType::Delete if key_str == me => Ok(()),
                _ => forbidden("a reaction is only one's own"),
            },
            ["notes", _, field, ..] if FACILITATOR_NOTE_FIELDS.contains(field) => {
                forbidden(&format!("`{field}` of a note is the facilitator's"))
            }
            ["notes", _, ..] if object.mine => Ok(()),
            ["notes", ..] => forbidden("notes of others are the facilitator's"),
            // Next steps: each coach's own, as themselves.
            ["nextSteps", _] => match key_str {
                _ if !object.mine => forbidden("next steps of others are their own"),
                "authorId" => match &op.action {
                    OpType::Put(ScalarValue::Str(value)) if value.as_str() == me => Ok(()),
                    _ => forbidden("a next step's `authorId` is its author's, as the token says"),
                },
                _ => Ok(()),
            },
            ["nextSteps", _, ..] if object.mine => Ok(()),
            ["nextSteps", ..] => forbidden("next steps of others are their own"),
            // Picks: one's own, a scalar per note, keyed `<authorId>:<noteId>`.
            ["picks"] => {
                if !key_str.starts_with(&format!("{me}:")) {
                    return forbidden("a pick is only one's own");
                }
                match &op.action {
                    OpType::Put(
                        ScalarValue::Int(_)
                        | ScalarValue::Uint(_)
                        | ScalarValue::F64(_)
                        | ScalarValue::Timestamp(_),
                    )
                    | OpType::Delete => Ok(()),
                    _ => forbidden("a pick is the time it was made"),
                }
            }
            // A time-out its caller takes back while it runs.
            ["timeouts"] if replaces && matches!(op.action, OpType::Delete) => {
                if self.all_own_entries(change, own, op) && self.all_running(change, own, op) {
                    Ok(())
                } else {
                    forbidden("only whoever called a time-out may take it back")
                }
            }
            // Child aliases and time-outs: added by anyone, as themselves.
            ["children" | "timeouts"] => match op.action {
                OpType::Make(ObjType::Map) if !replaces => Ok(()),
                _ => forbidden(&format!("`{key_str}`: only new entries may be added")),
            },
            ["children", _] if object.fresh => match (key_str, &op.action) {
                ("addedBy", OpType::Put(ScalarValue::Str(value)))
                    if value.as_str() != self.writer.name =>
                {
                    forbidden("a child alias is added as oneself")
                }
                _ => Ok(()),
            },
            ["timeouts", _] if object.fresh => match (key_str, &op.action) {
                ("calledById", OpType::Put(ScalarValue::Str(value))) if value.as_str() != me => {
                    forbidden("a time-out is called as oneself")
                }
                _ => Ok(()),
            },
            // Ended by anyone: a phone that ends its own time-out ends every running one of
            // the phase, in case two were called at once.
            ["timeouts", _] if key_str == "endedAt" && matches!(op.action, OpType::Put(_)) => {
                Ok(())
            }
            ["children" | "timeouts", _, ..] if object.fresh && object.mine => Ok(()),
            ["timeouts", ..] => forbidden("a time-out is only called and ended"),
            [] => forbidden(&format!("`{key_str}` is the facilitator's")),
            [root, ..] => forbidden(&format!("`{root}` is the facilitator's")),
        }
    }
}
