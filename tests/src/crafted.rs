//! Crafted sync messages for a lab board, and the check that the server survives them.
//!
//! A lab member's phone can send the server any bytes. [`run_case`] turns fuzz bytes into a few
//! sync messages aimed at a real board ([`Base`]: a fresh board plus notes written by two
//! phones), delivers them through the server's own ingest path ([`deliver`]: decoding as the
//! connection does, then [`DocState::receive`]) and, after every delivery, checks what storage
//! and a restart rely on:
//!
//! - the chunk the server would append to storage ([`DocState::unsaved`]), after the bytes
//!   stored so far, restores (as [`DocState::load`] does at start-up) to the same heads;
//! - whatever was accepted, the whole document saves (as a compaction does) and loads to the
//!   same heads;
//! - a refused message leaves the heads where they were, and no refusal is a contained panic.
//!
//! A violation panics, which is what the fuzz target in `fuzz/` reports; the regression test
//! `tests/fuzz_regressions.rs` replays the inputs it found.
//!
//! The messages mix structure and noise ([`generate`]): changes built field by field
//! ([`ExpandedChange`]) from meaningful choices (actors of the board or fresh ones, the right
//! `seq` and `start_op` or off by one, real object ids, keys and preds or arbitrary ones) and
//! arbitrary values, chained so later changes can build on earlier ones; whole documents
//! holding such changes; honest changes with bytes mutated (checksum repaired); and raw bytes
//! as a change chunk or as the whole message.
//!
//! A stored input means something only to this generator: changing how [`generate`] reads its
//! bytes (or the [`Base`] board) turns every found input into another case, and a kept crash
//! may stop reproducing its bug. After such a change, fuzz a while and run `scripts/fuzz merge`
//! so the replayed inputs cover the code again; the hand-written cases in
//! `tests/fuzz_regressions.rs` do not depend on it.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use arbitrary::Unstructured;
use automerge::legacy::{ElementId, Key, MarkData, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::sync::{self, BloomFilter, Have};
use automerge::transaction::Transactable;
use automerge::{
    ActorId, Automerge, AutomergeError, Change, ChangeHash, ExpandedChange, ObjType, ReadDoc,
    ScalarValue, ROOT,
};
use labboard::document::{ConnId, DocError, DocState, SyncKind};
use labboard::ingest::Writer;
use labboard::labs::Role;
use labboard_protocol::board::{self, LabInfo};
use labboard_protocol::{DocumentId, PeerId};
use sha2::{Digest, Sha256};

/// The server's actor on the board (it creates boards).
const SERVER_ACTOR: [u8; 16] = [0x5e; 16];
/// The two phones that wrote the honest notes.
pub const PHONE_ACTORS: [[u8; 16]; 2] = [[0xa1; 16], [0xb2; 16]];
/// Most sync messages in one case; enough to chain a change onto an accepted one.
const MAX_MESSAGES: usize = 4;
/// Most crafted changes in one message.
const MAX_CHANGES_PER_MESSAGE: usize = 3;
/// Most operations in one crafted change.
const MAX_OPS: usize = 12;
/// Longest crafted string: past the sizes a note ever has, short enough to keep cases fast.
const MAX_STRING_CHARS: usize = 70_000;
/// The first bytes of every automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Who sends a message; the server will check what each role may change.
#[derive(Debug, Clone)]
pub struct Sender {
    pub role: Role,
    /// The device id the sender's token names (`authorId` of its notes).
    pub author_id: String,
    pub peer_id: PeerId,
    pub conn: ConnId,
}

impl Sender {
    pub fn observer() -> Self {
        Self {
            role: Role::Observer,
            author_id: "device-observer".into(),
            peer_id: PeerId::new("peer-observer"),
            conn: 1,
        }
    }

    pub fn facilitator() -> Self {
        Self {
            role: Role::Facilitator,
            author_id: "device-facilitator".into(),
            peer_id: PeerId::new("peer-facilitator"),
            conn: 2,
        }
    }
}

/// Why the server did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotTaken {
    pub reason: String,
    /// The message passed every check, yet applying it failed or panicked (contained): the
    /// document had to be reloaded. A finding: the checks let through what they should not.
    pub poisoned: bool,
}

/// The server's ingest path for the `data` of one `sync` frame: decoded as the connection
/// decodes it, then received by the document, which detaches a sender it refuses (as
/// `DocActor` does; the phone resyncs from a fresh state when it reconnects).
///
/// This is the only call into the server here, so a change of `receive`'s signature is
/// adapted in this one place.
pub fn deliver(state: &mut DocState, sender: &Sender, data: &[u8]) -> Result<(), NotTaken> {
    let message = sync::Message::decode(data).map_err(|err| NotTaken {
        reason: format!("undecodable sync data: {err}"),
        poisoned: false,
    })?;
    let writer = Writer {
        role: sender.role,
        author_id: sender.author_id.clone(),
        name: format!("name of {}", sender.author_id),
    };
    state
        .receive(
            sender.conn,
            sender.peer_id.clone(),
            &writer,
            SyncKind::Sync,
            message,
        )
        .map_err(|err| {
            state.detach(sender.conn);
            NotTaken {
                poisoned: matches!(err, DocError::Poisoned(_)),
                reason: err.to_string(),
            }
        })
}

/// One fuzz case: generate messages from `data`, then [`check`] them. Inputs too short to
/// generate from do nothing.
pub fn run_case(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(deliveries) = generate(&mut u, Base::get()) {
        check(&deliveries);
    }
}

/// Delivers each message to a server holding the [`Base`] board and checks the invariants of
/// the module docs after each, panicking on a violation. Returns the heads it ends at.
pub fn check(deliveries: &[Delivery]) -> Vec<ChangeHash> {
    let base = Base::get();
    let doc_id = DocumentId::from_bytes([7; 16]);
    let server_peer = PeerId::new("server");
    let mut state =
        DocState::load(doc_id, server_peer.clone(), &base.bytes).expect("the honest board loads");
    let mut stored = base.bytes.clone();
    for (i, delivery) in deliveries.iter().enumerate() {
        let sender = if delivery.as_facilitator {
            Sender::facilitator()
        } else {
            Sender::observer()
        };
        let before = state.doc().get_heads();
        if let Err(refusal) = deliver(&mut state, &sender, &delivery.data) {
            // Panics while decoding what was sent are contained and refuse the message; one
            // while applying what passed every check would mean the checks missed something.
            assert!(
                !refusal.poisoned,
                "message {i}: a checked message could not be applied: {}",
                refusal.reason
            );
            assert_eq!(
                state.doc().get_heads(),
                before,
                "message {i}: refused ({}) but the heads changed",
                refusal.reason
            );
        }
        let heads = state.doc().get_heads();
        // First what a restart reads (the chunks appended since the last compaction), then what
        // a compaction writes.
        if let Some((chunk, unsaved_heads)) = state.unsaved() {
            stored.extend_from_slice(&chunk);
            state.mark_saved(unsaved_heads);
        }
        let restored = DocState::load(doc_id, server_peer.clone(), &stored)
            .unwrap_or_else(|err| panic!("message {i}: the stored chunks do not restore: {err}"));
        assert_eq!(
            restored.doc().get_heads(),
            heads,
            "message {i}: the stored chunks restore to other heads"
        );
        let saved = state.save();
        let reloaded = Automerge::load(&saved)
            .unwrap_or_else(|err| panic!("message {i}: the saved document does not load: {err}"));
        assert_eq!(
            reloaded.get_heads(),
            heads,
            "message {i}: the saved document reloads to other heads"
        );
        // Answering peers reads the whole document too (bloom filters, changes to send).
        state.outgoing();
    }
    state.doc().get_heads()
}

/// One message to deliver.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub as_facilitator: bool,
    /// The `data` of a `sync` frame.
    pub data: Vec<u8>,
}

/// The honest board every case starts from, built once.
pub struct Base {
    pub doc: Automerge,
    /// `doc`, saved: what storage holds before the case.
    pub bytes: Vec<u8>,
    /// Every change of `doc`, encoded, for mutation.
    pub changes: Vec<Vec<u8>>,
    model: Model,
}

impl Base {
    /// The highest op counter of the board: the next change's `start_op` is one more.
    pub fn max_op(&self) -> u64 {
        self.model.max_op
    }

    /// The last seq of `actor` on the board, 0 for an actor it has not seen.
    pub fn last_seq(&self, actor: &ActorId) -> u64 {
        self.model.seqs.get(actor).copied().unwrap_or(0)
    }

    /// A sync message from a phone carrying `changes`, as automerge-repo sends them.
    pub fn message_with(&self, changes: &[ExpandedChange]) -> Vec<u8> {
        let chunks = changes
            .iter()
            .map(|change| Change::from(change.clone()).raw_bytes().to_vec())
            .collect::<Vec<_>>();
        sync::Message {
            heads: self.doc.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: sync::ChunkList::from(chunks),
            flags: None,
            version: sync::MessageVersion::V1,
        }
        .encode()
    }

    pub fn get() -> &'static Base {
        static BASE: OnceLock<Base> = OnceLock::new();
        BASE.get_or_init(|| {
            let doc = lab_board();
            let bytes = doc.save();
            let model = Model::of(&doc);
            let changes = doc
                .get_changes(&[])
                .iter()
                .map(|change| change.raw_bytes().to_vec())
                .collect();
            Base {
                doc,
                bytes,
                changes,
                model,
            }
        })
    }
}

/// A board as a lab has it after a few minutes: created by the server, two phones have each
/// written a note, one reacted to the other's and the facilitator has typed a title. Every
/// change has time 0, so the board (and its hashes) is the same in every run.
pub fn lab_board() -> Automerge {
    let info = LabInfo {
        title: "Fractions".into(),
        school: "Lincoln".into(),
        grade: "4".into(),
        date: "2024-05-02".into(),
    };
    let mut board = board::new_board(&info, ActorId::from(SERVER_ACTOR));
    let mut phones: Vec<Automerge> = PHONE_ACTORS
        .iter()
        .map(|actor| board.fork().with_actor(ActorId::from(*actor)))
        .collect();
    for (phone, doc) in phones.iter_mut().enumerate() {
        doc.transact::<_, _, AutomergeError>(|tx| {
            let (_, notes) = tx.get(ROOT, "notes")?.expect("a board has notes");
            let note = tx.put_object(&notes, format!("note-{phone}"), ObjType::Map)?;
            tx.put(&note, "text", format!("Phone {phone} saw a number line"))?;
            tx.put(&note, "category", "student-thinking")?;
            tx.put(&note, "authorName", format!("Coach {phone}"))?;
            tx.put(&note, "authorId", format!("device-{phone}"))?;
            tx.put(&note, "createdAt", 1_714_640_000_000_i64 + phone as i64)?;
            let children = tx.put_object(&note, "children", ObjType::List)?;
            tx.insert(&children, 0, "AB")?;
            tx.put_object(&note, "reactions", ObjType::Map)?;
            Ok(())
        })
        .expect("writing a note in memory");
    }
    let [first, second] = &mut phones[..] else {
        unreachable!("two phones");
    };
    second.merge(first).expect("merging phones");
    second
        .transact::<_, _, AutomergeError>(|tx| {
            let (_, notes) = tx.get(ROOT, "notes")?.expect("notes");
            let (_, note) = tx.get(&notes, "note-0")?.expect("the first note");
            let (_, reactions) = tx.get(&note, "reactions")?.expect("reactions");
            tx.put(&reactions, "device-1", 1_714_640_060_000_i64)?;
            Ok(())
        })
        .expect("reacting in memory");
    board
        .merge(second)
        .expect("merging the phones into the board");
    board
        .transact::<_, _, AutomergeError>(|tx| {
            let (_, lab) = tx.get(ROOT, "lab")?.expect("lab");
            let (_, title) = tx.get(&lab, "title")?.expect("title");
            tx.splice_text(&title, 9, 0, " & decimals")?;
            Ok(())
        })
        .expect("typing a title in memory");
    board
}

/// What the generator knows about the document it aims at: every actor, object, key, element
/// and op of its history, plus what crafted changes added (accepted or not).
#[derive(Debug, Clone, Default)]
struct Model {
    actors: Vec<ActorId>,
    /// Last seq of each actor.
    seqs: HashMap<ActorId, u64>,
    max_op: u64,
    heads: Vec<ChangeHash>,
    hashes: Vec<ChangeHash>,
    objects: Vec<(ObjectId, ObjType)>,
    /// Map keys set in each object, with the op that set them last.
    keys: Vec<(ObjectId, String, OpId)>,
    /// List and text elements: (object, element id).
    elems: Vec<(ObjectId, OpId)>,
    ops: Vec<OpId>,
}

impl Model {
    fn of(doc: &Automerge) -> Self {
        let mut model = Model {
            objects: vec![(ObjectId::Root, ObjType::Map)],
            ..Model::default()
        };
        for change in doc.get_changes(&[]) {
            model.add(&change.decode(), change.hash());
        }
        model.heads = doc.get_heads();
        model
    }

    /// Records a change as if applied.
    fn add(&mut self, change: &ExpandedChange, hash: ChangeHash) {
        let actor = &change.actor_id;
        if !self.actors.contains(actor) {
            self.actors.push(actor.clone());
        }
        let seq = self.seqs.entry(actor.clone()).or_default();
        *seq = (*seq).max(change.seq);
        for (i, op) in change.operations.iter().enumerate() {
            let id = OpId(
                change.start_op.get().saturating_add(i as u64),
                actor.clone(),
            );
            self.max_op = self.max_op.max(id.0);
            if let OpType::Make(obj_type) = op.action {
                self.objects.push((ObjectId::Id(id.clone()), obj_type));
            }
            match &op.key {
                Key::Map(key) => self
                    .keys
                    .push((op.obj.clone(), key.to_string(), id.clone())),
                Key::Seq(_) if op.insert => self.elems.push((op.obj.clone(), id.clone())),
                Key::Seq(_) => {}
            }
            self.ops.push(id);
        }
        self.hashes.push(hash);
        self.heads = vec![hash];
    }

    fn obj_type(&self, obj: &ObjectId) -> Option<ObjType> {
        self.objects
            .iter()
            .find(|(id, _)| id == obj)
            .map(|(_, obj_type)| *obj_type)
    }
}

/// Picks one of `items`, or `None` if there are none.
fn pick<'a, T>(u: &mut Unstructured<'_>, items: &'a [T]) -> arbitrary::Result<Option<&'a T>> {
    if items.is_empty() {
        return Ok(None);
    }
    Ok(items.get(u.choose_index(items.len())?))
}

/// The sync messages of one case.
pub fn generate(u: &mut Unstructured<'_>, base: &Base) -> arbitrary::Result<Vec<Delivery>> {
    let mut model = base.model.clone();
    let count = u.int_in_range(1..=MAX_MESSAGES)?;
    let mut deliveries = Vec::with_capacity(count);
    for _ in 0..count {
        let as_facilitator = u.arbitrary()?;
        let data = match u.int_in_range(0..=9)? {
            0..=4 => {
                let chunks = crafted_chunks(u, &mut model)?;
                sync_message(u, &model, base, chunks)?
            }
            5 => {
                let chunks = crafted_chunks(u, &mut model)?;
                match whole_document(base, &chunks) {
                    Some(doc) => sync_message(u, &model, base, vec![doc])?,
                    None => continue,
                }
            }
            6 => {
                let mut change = honest_change(u, base)?;
                mutate(u, &mut change)?;
                sync_message(u, &model, base, vec![change])?
            }
            7 => {
                let mut change = pick(u, &base.changes)?.cloned().unwrap_or_default();
                mutate(u, &mut change)?;
                sync_message(u, &model, base, vec![change])?
            }
            8 => {
                let len = u.arbitrary_len::<u8>()?;
                let mut chunk = u.bytes(len)?.to_vec();
                if u.arbitrary()? {
                    chunk.splice(0..0, CHUNK_MAGIC.iter().chain(&[0; 4]).copied());
                    fix_checksum(&mut chunk);
                }
                sync_message(u, &model, base, vec![chunk])?
            }
            _ => {
                let len = u.arbitrary_len::<u8>()?;
                u.bytes(len)?.to_vec()
            }
        };
        deliveries.push(Delivery {
            as_facilitator,
            data,
        });
    }
    Ok(deliveries)
}

/// One to a few crafted changes, each encoded; later ones may build on earlier ones.
fn crafted_chunks(u: &mut Unstructured<'_>, model: &mut Model) -> arbitrary::Result<Vec<Vec<u8>>> {
    let count = u.int_in_range(1..=MAX_CHANGES_PER_MESSAGE)?;
    let mut chunks = Vec::with_capacity(count);
    for _ in 0..count {
        let expanded = crafted_change(u, model)?;
        let Some(change) = quietly(|| Change::from(expanded.clone())) else {
            // Automerge cannot encode it: a limit of the generator, not of the server.
            continue;
        };
        model.add(&expanded, change.hash());
        chunks.push(change.raw_bytes().to_vec());
    }
    Ok(chunks)
}

fn crafted_change(u: &mut Unstructured<'_>, model: &Model) -> arbitrary::Result<ExpandedChange> {
    let actor_id = match u.int_in_range(0..=3)? {
        0 | 1 => pick(u, &model.actors)?
            .cloned()
            .unwrap_or_else(|| ActorId::from(PHONE_ACTORS[0])),
        2 => ActorId::from(PHONE_ACTORS[usize::from(u.arbitrary::<bool>()?)]),
        _ => fresh_actor(u)?,
    };
    let last_seq = model.seqs.get(&actor_id).copied().unwrap_or(0);
    let seq = match u.int_in_range(0..=5)? {
        0 | 1 => last_seq.saturating_add(1),
        2 => 1,
        3 => last_seq,
        4 => last_seq.saturating_add(u.int_in_range(2..=5)?),
        _ => u.arbitrary()?,
    };
    let start_op = match u.int_in_range(0..=7)? {
        0..=2 => model.max_op.saturating_add(1),
        3 => model.max_op,
        4 => 1,
        5 => u64::from(u32::MAX) - u.int_in_range(0..=2)? + u.int_in_range(0..=2)?,
        6 => u64::MAX - u.int_in_range(0..=16)?,
        _ => u.arbitrary()?,
    };
    let start_op = NonZeroU64::new(start_op).unwrap_or(NonZeroU64::MIN);
    let deps = match u.int_in_range(0..=5)? {
        0..=2 => model.heads.clone(),
        3 => Vec::new(),
        4 => vec![ChangeHash(u.arbitrary()?)],
        _ => {
            let mut deps = Vec::new();
            for _ in 0..u.int_in_range(1..=3)? {
                deps.extend(pick(u, &model.hashes)?.copied());
            }
            deps
        }
    };
    let mut change = ExpandedChange {
        operations: Vec::new(),
        actor_id,
        hash: None,
        seq,
        start_op,
        time: if u.ratio(1, 4)? { u.arbitrary()? } else { 0 },
        message: if u.ratio(1, 8)? {
            Some(u.arbitrary()?)
        } else {
            None
        },
        deps,
        extra_bytes: if u.ratio(1, 16)? {
            u.arbitrary()?
        } else {
            Vec::new()
        },
        author: None,
    };
    // Objects made by earlier ops of this change can be used by later ones.
    let mut model = model.clone();
    for i in 0..u.int_in_range(0..=MAX_OPS)? {
        let op = crafted_op(u, &model)?;
        let id = OpId(
            change.start_op.get().saturating_add(i as u64),
            change.actor_id.clone(),
        );
        if let OpType::Make(obj_type) = op.action {
            model.objects.push((ObjectId::Id(id.clone()), obj_type));
        }
        if op.insert {
            model.elems.push((op.obj.clone(), id.clone()));
        }
        model.ops.push(id);
        change.operations.push(op);
    }
    Ok(change)
}

fn crafted_op(u: &mut Unstructured<'_>, model: &Model) -> arbitrary::Result<Op> {
    let action = match u.int_in_range(0..=9)? {
        0 => OpType::Make(obj_type(u)?),
        1..=4 => OpType::Put(scalar(u)?),
        5 => OpType::Delete,
        6 => OpType::Increment(int(u)?),
        7 => OpType::MarkBegin(MarkData {
            name: u.arbitrary::<&str>()?.into(),
            value: scalar(u)?,
            expand: u.arbitrary()?,
        }),
        8 => OpType::MarkEnd(u.arbitrary()?),
        _ => OpType::Make(ObjType::Text),
    };
    let obj = match u.int_in_range(0..=5)? {
        0 => ObjectId::Root,
        1..=4 => pick(u, &model.objects)?
            .map(|(obj, _)| obj.clone())
            .unwrap_or(ObjectId::Root),
        _ => ObjectId::Id(arbitrary_op_id(u, model)?),
    };
    let seq_obj = matches!(model.obj_type(&obj), Some(ObjType::List | ObjType::Text));
    let key_is_seq = if u.ratio(1, 8)? { !seq_obj } else { seq_obj };
    let key = if key_is_seq {
        let elems: Vec<&OpId> = model
            .elems
            .iter()
            .filter(|(of, _)| *of == obj)
            .map(|(_, elem)| elem)
            .collect();
        Key::Seq(match u.int_in_range(0..=4)? {
            0 | 1 => ElementId::Head,
            2 | 3 => match pick(u, &elems)? {
                Some(elem) => ElementId::Id((*elem).clone()),
                None => ElementId::Head,
            },
            _ => ElementId::Id(arbitrary_op_id(u, model)?),
        })
    } else {
        let keys: Vec<&str> = model
            .keys
            .iter()
            .filter(|(of, _, _)| *of == obj)
            .map(|(_, key, _)| key.as_str())
            .collect();
        Key::Map(match u.int_in_range(0..=3)? {
            0 | 1 => pick(u, &keys)?.copied().unwrap_or("notes").into(),
            2 => pick(u, &model.keys)?
                .map_or("text", |(_, key, _)| key.as_str())
                .into(),
            _ => u.arbitrary::<&str>()?.into(),
        })
    };
    let current: Vec<OpId> = match &key {
        Key::Map(name) => model
            .keys
            .iter()
            .rev()
            .find(|(of, key, _)| *of == obj && key.as_str() == name.as_str())
            .map(|(_, _, op)| op.clone())
            .into_iter()
            .collect(),
        Key::Seq(ElementId::Id(elem)) => vec![elem.clone()],
        Key::Seq(ElementId::Head) => Vec::new(),
    };
    let mut pred = Vec::new();
    match u.int_in_range(0..=4)? {
        0 => {}
        1 | 2 => pred.extend(current),
        3 => pred.extend(pick(u, &model.ops)?.cloned()),
        _ => {
            for _ in 0..u.int_in_range(1..=3)? {
                pred.push(arbitrary_op_id(u, model)?);
            }
        }
    }
    let insert = if key_is_seq && u.ratio(3, 4)? {
        !matches!(action, OpType::Delete | OpType::Increment(_))
    } else {
        u.ratio(1, 16)?
    };
    Ok(Op {
        action,
        obj,
        key,
        pred: SortedVec::from(pred),
        insert,
    })
}

fn obj_type(u: &mut Unstructured<'_>) -> arbitrary::Result<ObjType> {
    Ok(*u.choose(&[ObjType::Map, ObjType::List, ObjType::Text, ObjType::Table])?)
}

fn int(u: &mut Unstructured<'_>) -> arbitrary::Result<i64> {
    Ok(match u.int_in_range(0..=4)? {
        0 => i64::MAX,
        1 => i64::MIN,
        2 => u.int_in_range(-3..=3)?,
        _ => u.arbitrary()?,
    })
}

fn scalar(u: &mut Unstructured<'_>) -> arbitrary::Result<ScalarValue> {
    Ok(match u.int_in_range(0..=11)? {
        0 => ScalarValue::Bytes(u.arbitrary()?),
        1 => ScalarValue::Str(u.arbitrary::<&str>()?.into()),
        2 => {
            let ch = u.arbitrary::<char>()?;
            let len = u.int_in_range(0..=MAX_STRING_CHARS)?;
            ScalarValue::Str(std::iter::repeat_n(ch, len).collect::<String>().into())
        }
        3 => ScalarValue::Int(int(u)?),
        4 => ScalarValue::Uint(if u.arbitrary()? {
            u64::MAX
        } else {
            u.arbitrary()?
        }),
        5 => {
            let any = u.arbitrary()?;
            ScalarValue::F64(*u.choose(&[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                f64::MIN_POSITIVE / 2.0,
                any,
            ])?)
        }
        6 => ScalarValue::counter(int(u)?),
        7 => ScalarValue::Timestamp(int(u)?),
        8 => ScalarValue::Boolean(u.arbitrary()?),
        9 => ScalarValue::Unknown {
            type_code: u.arbitrary()?,
            bytes: u.arbitrary()?,
        },
        10 => ScalarValue::Null,
        _ => ScalarValue::Str("student-thinking".into()),
    })
}

fn fresh_actor(u: &mut Unstructured<'_>) -> arbitrary::Result<ActorId> {
    Ok(if u.ratio(7, 8)? {
        ActorId::from(u.arbitrary::<[u8; 16]>()?)
    } else {
        ActorId::from(u.arbitrary::<Vec<u8>>()?)
    })
}

/// An op id that may name nothing: huge counters, unknown actors.
fn arbitrary_op_id(u: &mut Unstructured<'_>, model: &Model) -> arbitrary::Result<OpId> {
    let counter = match u.int_in_range(0..=4)? {
        0 => u64::MAX,
        1 => u64::from(u32::MAX) + u.int_in_range(0..=2)?,
        2 => model.max_op.saturating_add(u.int_in_range(0..=2)?),
        3 => 0,
        _ => u.arbitrary()?,
    };
    let actor = if u.arbitrary()? {
        pick(u, &model.actors)?
            .cloned()
            .unwrap_or_else(|| ActorId::from(SERVER_ACTOR))
    } else {
        fresh_actor(u)?
    };
    Ok(OpId(counter, actor))
}

/// A change a phone could really send: a new note, next in its actor's history.
fn honest_change(u: &mut Unstructured<'_>, base: &Base) -> arbitrary::Result<Vec<u8>> {
    let actor = ActorId::from(PHONE_ACTORS[usize::from(u.arbitrary::<bool>()?)]);
    let text: String = u.arbitrary()?;
    let mut doc = base.doc.fork().with_actor(actor);
    doc.transact::<_, _, AutomergeError>(|tx| {
        let (_, notes) = tx.get(ROOT, "notes")?.expect("a board has notes");
        let note = tx.put_object(&notes, "note-new", ObjType::Map)?;
        tx.put(&note, "text", text.as_str())?;
        tx.put(&note, "category", "strategies")?;
        let children = tx.put_object(&note, "children", ObjType::List)?;
        tx.insert(&children, 0, "CD")?;
        tx.put_object(&note, "reactions", ObjType::Map)?;
        Ok(())
    })
    .expect("writing a note in memory");
    Ok(doc
        .get_last_local_change()
        .expect("just made")
        .raw_bytes()
        .to_vec())
}

/// Changes some bytes, then usually repairs the chunk checksum so the change gets past it.
fn mutate(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) -> arbitrary::Result<()> {
    for _ in 0..u.int_in_range(1..=8)? {
        if bytes.is_empty() {
            bytes.push(u.arbitrary()?);
            continue;
        }
        let at = u.choose_index(bytes.len())?;
        match u.int_in_range(0..=3)? {
            0 | 1 => bytes[at] = u.arbitrary()?,
            2 => bytes.insert(at, u.arbitrary()?),
            _ => {
                bytes.remove(at);
            }
        }
    }
    if u.ratio(3, 4)? {
        fix_checksum(bytes);
    }
    Ok(())
}

/// Rewrites the checksum of a chunk (the first 4 bytes of the SHA-256 of its type, length and
/// body) to match its contents, if the header parses.
fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() < 9 || bytes[..4] != CHUNK_MAGIC {
        return;
    }
    let mut len: u64 = 0;
    let mut at = 9;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = bytes.get(at) else { return };
        at += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let Some(end) = usize::try_from(len)
        .ok()
        .and_then(|len| at.checked_add(len))
    else {
        return;
    };
    if end > bytes.len() {
        return;
    }
    let hash = Sha256::digest(&bytes[8..end]);
    bytes[4..8].copy_from_slice(&hash[..4]);
}

/// The board plus `chunks`, saved as one document chunk, if automerge takes them. Chunks
/// holding marks are left out: automerge 0.12 can abort the process (a panic while another
/// unwinds, in its mark index) applying crafted ones, which no `catch_unwind` contains. The
/// server refuses marks before applying anything; here they would only end the fuzzing.
fn whole_document(base: &Base, chunks: &[Vec<u8>]) -> Option<Vec<u8>> {
    quietly(|| {
        let mut doc = base.doc.clone();
        for chunk in chunks {
            if has_marks(chunk) {
                continue;
            }
            doc.load_incremental(chunk).ok()?;
        }
        Some(doc.save())
    })
    .flatten()
}

/// Whether a change chunk holds a mark (or does not decode as a change at all).
fn has_marks(chunk: &[u8]) -> bool {
    Change::try_from(chunk).map_or(true, |change| {
        change
            .decode()
            .operations
            .iter()
            .any(|op| matches!(op.action, OpType::MarkBegin(_) | OpType::MarkEnd(_)))
    })
}

/// A sync message carrying `chunks`, encoded, with the other fields honest or not.
fn sync_message(
    u: &mut Unstructured<'_>,
    model: &Model,
    base: &Base,
    chunks: Vec<Vec<u8>>,
) -> arbitrary::Result<Vec<u8>> {
    let heads = match u.int_in_range(0..=3)? {
        0 | 1 => model.heads.clone(),
        2 => base.doc.get_heads(),
        _ => vec![ChangeHash(u.arbitrary()?)],
    };
    let need = if u.ratio(1, 8)? {
        vec![ChangeHash(u.arbitrary()?)]
    } else {
        Vec::new()
    };
    let have = match u.int_in_range(0..=3)? {
        0 | 1 => Vec::new(),
        2 => vec![Have {
            last_sync: base.doc.get_heads(),
            bloom: BloomFilter::from_hashes(base.model.hashes.iter()),
        }],
        _ => vec![Have {
            last_sync: Vec::new(),
            bloom: BloomFilter::default(),
        }],
    };
    let flags = if u.arbitrary()? {
        let mut flags = sync::MessageFlags::new();
        flags.set(u.arbitrary()?);
        Some(flags)
    } else {
        None
    };
    let version = if u.arbitrary()? {
        sync::MessageVersion::V2
    } else {
        sync::MessageVersion::V1
    };
    let message = sync::Message {
        heads,
        need,
        have,
        changes: sync::ChunkList::from(chunks),
        flags,
        version,
    };
    Ok(quietly(|| message.encode()).unwrap_or_default())
}

type PanicHook = Box<dyn Fn(&panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Runs `f`, turning a panic into `None` without printing it or letting the fuzzer's hook abort
/// the process. For the generator's own use of automerge only; panics of the server are never
/// caught here. Panics of other threads meanwhile still reach the previous hook.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    // Swapping the process-wide hook is only sound one thread at a time.
    static SWAP: Mutex<()> = Mutex::new(());
    let _swapping = SWAP.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous: Arc<PanicHook> = Arc::new(panic::take_hook());
    let me = std::thread::current().id();
    let outer = Arc::clone(&previous);
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            outer(info);
        }
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(f)).ok();
    drop(panic::take_hook());
    let previous = Arc::try_unwrap(previous)
        .unwrap_or_else(|_| unreachable!("our hook, the only other owner, was dropped"));
    panic::set_hook(previous);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_board_is_the_same_every_time() {
        assert_eq!(lab_board().get_heads(), Base::get().doc.get_heads());
    }

    #[test]
    fn checksum_repair_matches_automerge() {
        let mut bytes = Base::get().changes[0].clone();
        let original = bytes.clone();
        bytes[4] ^= 0xff;
        fix_checksum(&mut bytes);
        assert_eq!(bytes, original);
    }

    #[test]
    fn quietly_contains_panics() {
        assert_eq!(quietly(|| 1), Some(1));
        assert_eq!(quietly(|| -> i32 { panic!("contained") }), None);
    }
}
