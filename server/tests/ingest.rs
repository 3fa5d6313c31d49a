//! The gate in front of a board, through `DocState::receive`: crafted changes are refused and
//! leave the document as it was; honest ones pass; roles are enforced. After every step the
//! stored form of the document loads again to the same heads.

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, Change, ExpandedChange, ObjType, ReadDoc, ScalarValue, ROOT};
use labboard::document::{DocError, DocState, SyncKind};
use labboard::ingest::{Refusal, Writer};
use labboard::labs::Role;
use labboard_protocol::board::{new_board, LabInfo};
use labboard_protocol::{DocumentId, PeerId};

fn observer(author: &str) -> Writer {
    Writer {
        role: Role::Observer,
        author_id: author.into(),
        name: format!("name of {author}"),
    }
}

fn facilitator() -> Writer {
    Writer {
        role: Role::Facilitator,
        author_id: "a-facilitator".into(),
        name: "Facilitator".into(),
    }
}

/// A lab board with one note by `ana`, as the server holds it, and a phone's copy.
struct Lab {
    state: DocState,
    phone: Automerge,
    stored: Vec<u8>,
}

impl Lab {
    fn new() -> Self {
        let board = new_board(
            &LabInfo {
                title: "Making ten".into(),
                ..LabInfo::default()
            },
            ActorId::random(),
        );
        let stored = board.save();
        let state = DocState::load(DocumentId::random(), PeerId::from("server"), &stored).unwrap();
        let mut lab = Self {
            state,
            phone: board.fork(),
            stored,
        };
        let note = lab.note_change("n-ana", "a-ana");
        lab.send(&observer("a-ana"), vec![note])
            .expect("ana's own note");
        lab
    }

    /// A change of the phone adding a note `id` by `author`, applied to the phone.
    fn note_change(&mut self, id: &str, author: &str) -> Change {
        let notes = self.phone.get(ROOT, "notes").unwrap().unwrap().1;
        let mut tx = self.phone.transaction();
        let note = tx.put_object(&notes, id, ObjType::Map).unwrap();
        tx.put(&note, "text", "counted on from 7").unwrap();
        tx.put(&note, "authorId", author).unwrap();
        tx.put(&note, "category", "strategies").unwrap();
        tx.put_object(&note, "reactions", ObjType::Map).unwrap();
        tx.put_object(&note, "children", ObjType::List).unwrap();
        tx.commit();
        self.phone.get_last_local_change().unwrap().clone()
    }

    /// A change made on a fork of the phone (so the phone itself stays honest).
    fn forked_change(
        &self,
        edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
    ) -> Change {
        let mut fork = self.phone.fork();
        let mut tx = fork.transaction();
        edit(&mut tx);
        tx.commit();
        fork.get_last_local_change().unwrap().clone()
    }

    /// Sends `changes` in one sync message as `writer`. On success the server stores them.
    fn send(&mut self, writer: &Writer, changes: Vec<Change>) -> Outcome {
        let before = self.state.doc().get_heads();
        let mut heads = before.clone();
        heads.extend(changes.iter().map(Change::hash));
        heads.sort();
        let message = sync::Message {
            heads,
            need: Vec::new(),
            have: Vec::new(),
            changes: sync::ChunkList::from(
                changes
                    .iter()
                    .map(|c| c.raw_bytes().to_vec())
                    .collect::<Vec<_>>(),
            ),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        let result = self
            .state
            .receive(1, PeerId::from("phone"), writer, SyncKind::Sync, message)
            .map_err(Box::new);
        match &result {
            Ok(()) => {
                if let Some((chunk, heads)) = self.state.unsaved() {
                    self.stored.extend_from_slice(&chunk);
                    self.state.mark_saved(heads);
                }
            }
            Err(_) => assert_eq!(
                self.state.doc().get_heads(),
                before,
                "a refused message changed the board"
            ),
        }
        self.assert_reloads();
        result
    }

    /// The stored form (snapshot plus chunks) and a fresh save both load to the same heads.
    fn assert_reloads(&mut self) {
        let heads = self.state.doc().get_heads();
        let reloaded = Automerge::load(&self.stored).expect("stored board loads");
        assert_eq!(
            reloaded.get_heads(),
            heads,
            "stored board reloads to other heads"
        );
        let saved = self.state.verified_snapshot().expect("saved board loads");
        assert_eq!(Automerge::load(&saved).unwrap().get_heads(), heads);
    }

    fn notes(&self) -> usize {
        let doc = self.state.doc();
        let notes = doc.get(ROOT, "notes").unwrap().unwrap().1;
        doc.length(&notes)
    }
}

/// Re-encodes `change` after `edit` changes its fields: what a hand-made client could send.
fn crafted(change: &Change, edit: impl FnOnce(&mut ExpandedChange)) -> Change {
    let mut expanded = change.decode();
    expanded.hash = None;
    edit(&mut expanded);
    Change::from(expanded)
}

/// What the server answered a message.
type Outcome = Result<(), Box<DocError>>;

/// The refusal a result holds, if it is one.
fn refusal(result: &Outcome) -> Option<&Refusal> {
    match result.as_ref().map_err(|err| &**err) {
        Err(DocError::Refused(refusal)) => Some(refusal),
        _ => None,
    }
}

fn invalid(result: Outcome) -> String {
    match refusal(&result) {
        Some(Refusal::Invalid { reason, .. }) => reason.clone(),
        _ => panic!("expected an invalid-change refusal, got {result:?}"),
    }
}

fn forbidden(result: Outcome) -> String {
    match refusal(&result) {
        Some(Refusal::Forbidden { reason, .. }) => reason.clone(),
        _ => panic!("expected a forbidden-change refusal, got {result:?}"),
    }
}

type Edit = Box<dyn Fn(&mut automerge::transaction::Transaction<'_>)>;

#[test]
fn a_change_whose_start_op_overlaps_its_history_is_refused() {
    let mut lab = Lab::new();
    let honest = lab.forked_change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        tx.put(&notes, "n-x", "x").unwrap();
    });
    let bad = crafted(&honest, |c| {
        c.actor_id = ActorId::random();
        c.seq = 1;
        c.start_op = std::num::NonZeroU64::new(honest.start_op().get() - 1).unwrap();
    });
    let reason = invalid(lab.send(&observer("a-eve"), vec![bad]));
    assert!(reason.contains("start_op"), "{reason}");
    assert_eq!(lab.notes(), 1);
}

#[test]
fn changes_without_ops_are_refused() {
    // Found by the fuzzer: automerge 0.12 panics applying some chains of them.
    let mut lab = Lab::new();
    let honest = lab.note_change("n-e", "a-ana");
    let empty = crafted(&honest, |c| c.operations.clear());
    let reason = invalid(lab.send(&observer("a-ana"), vec![empty]));
    assert!(reason.contains("without ops"), "{reason}");
}

#[test]
fn a_second_change_with_the_same_seq_is_refused() {
    let mut lab = Lab::new();
    let first = lab.note_change("n-1", "a-ana");
    lab.send(&observer("a-ana"), vec![first.clone()]).unwrap();
    let twin = crafted(&first, |c| c.time += 1);
    assert_ne!(twin.hash(), first.hash());
    let reason = invalid(lab.send(&observer("a-ana"), vec![twin]));
    assert!(reason.contains("seq"), "{reason}");
}

#[test]
fn op_counters_beyond_32_bits_are_refused() {
    let mut lab = Lab::new();
    let honest = lab.forked_change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        let note = tx.put_object(&notes, "n-t", ObjType::Map).unwrap();
        tx.put_object(&note, "text", ObjType::Text).unwrap();
    });
    let bad = crafted(&honest, |c| {
        let op = c.operations.last_mut().unwrap();
        op.pred = vec![automerge::legacy::OpId(
            u64::from(u32::MAX) + 7,
            c.actor_id.clone(),
        )]
        .into_iter()
        .collect();
    });
    // Automerge itself cannot read this change back (it panics, contained): refused either way.
    assert!(refusal(&lab.send(&observer("a-eve"), vec![bad])).is_some());

    let huge = crafted(&honest, |c| {
        c.start_op = std::num::NonZeroU64::new(u64::from(u32::MAX)).unwrap();
    });
    let reason = invalid(lab.send(&observer("a-eve"), vec![huge]));
    assert!(reason.contains("beyond"), "{reason}");
}

#[test]
fn an_op_may_replace_only_values_of_what_it_writes() {
    // Found by the fuzzer: a pred naming an op elsewhere on the board, or an insert that
    // replaces something, leaves a board that cannot be saved.
    let mut lab = Lab::new();
    let rename = lab.forked_change(|tx| {
        let lab_map = tx.get(ROOT, "lab").unwrap().unwrap().1;
        tx.put(&lab_map, "grade", "3").unwrap();
    });
    // The op that made `notes`: a real op, but not a value of `lab.grade`.
    let Some((_, automerge::ObjId::Id(counter, actor, _))) =
        lab.state.doc().get(ROOT, "notes").unwrap()
    else {
        panic!("the board has notes");
    };
    let elsewhere = crafted(&rename, |c| {
        c.operations[0].pred = vec![automerge::legacy::OpId(counter, actor)]
            .into_iter()
            .collect();
    });
    let reason = invalid(lab.send(&facilitator(), vec![elsewhere]));
    assert!(reason.contains("not a value"), "{reason}");
    // The honest one, which replaces the old grade, goes through.
    lab.send(&facilitator(), vec![rename]).unwrap();
}

#[test]
fn ops_on_objects_that_do_not_exist_are_refused() {
    let mut lab = Lab::new();
    let honest = lab.forked_change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        tx.put(&notes, "n-y", "y").unwrap();
    });
    let bad = crafted(&honest, |c| {
        let unknown = ActorId::random();
        c.operations[0].obj = automerge::legacy::ObjectId::Id(automerge::legacy::OpId(1, unknown));
    });
    invalid(lab.send(&observer("a-eve"), vec![bad]));
}

#[test]
fn a_change_that_waits_for_a_missing_dependency_is_admitted_once_it_comes() {
    let mut lab = Lab::new();
    let first = lab.note_change("n-2", "a-ana");
    let second = lab.note_change("n-3", "a-ana");
    // The second alone waits; the server asks for what it waits for, not for it.
    lab.send(&observer("a-ana"), vec![second.clone()]).unwrap();
    assert_eq!(lab.notes(), 1);
    lab.send(&observer("a-ana"), vec![first]).unwrap();
    assert_eq!(lab.notes(), 3);
}

#[test]
fn what_waits_for_missing_dependencies_is_bounded() {
    let mut lab = Lab::new();
    let big = lab.forked_change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        tx.put(&notes, "n-big", "x".repeat(5 * 1024 * 1024))
            .unwrap();
    });
    // Its dependency never comes: it would wait, but not with 5 MiB.
    let orphan = crafted(&big, |c| c.deps = vec![automerge::ChangeHash([7; 32])]);
    let result = lab.send(&observer("a-eve"), vec![orphan]);
    assert!(
        matches!(refusal(&result), Some(Refusal::TooManyWaiting)),
        "{result:?}"
    );
}

#[test]
fn observers_add_notes_and_change_only_their_own() {
    let mut lab = Lab::new();
    // Ben's note, with Ben's id.
    let ben = lab.note_change("n-ben", "a-ben");
    lab.send(&observer("a-ben"), vec![ben]).unwrap();
    // A note claiming someone else's id.
    let claimed = lab.forked_change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        let note = tx.put_object(&notes, "n-fake", ObjType::Map).unwrap();
        tx.put(&note, "authorId", "a-ana").unwrap();
    });
    forbidden(lab.send(&observer("a-ben"), vec![claimed]));

    let edit_anas = |lab: &Lab| {
        lab.forked_change(|tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let note = tx.get(&notes, "n-ana").unwrap().unwrap().1;
            tx.put(&note, "text", "rewritten").unwrap();
        })
    };
    let delete_anas = |lab: &Lab| {
        lab.forked_change(|tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            tx.delete(&notes, "n-ana").unwrap();
        })
    };
    forbidden(lab.send(&observer("a-ben"), vec![edit_anas(&lab)]));
    forbidden(lab.send(&observer("a-ben"), vec![delete_anas(&lab)]));
    assert_eq!(lab.notes(), 2);
    // Ana edits and deletes her own.
    lab.send(&observer("a-ana"), vec![edit_anas(&lab)]).unwrap();
    lab.send(&observer("a-ana"), vec![delete_anas(&lab)])
        .unwrap();
    assert_eq!(lab.notes(), 1);
}

#[test]
fn the_facilitator_may_change_what_observers_may_not() {
    let edits: Vec<(&str, Edit)> = vec![
        (
            "rename the lab",
            Box::new(|tx| {
                let lab = tx.get(ROOT, "lab").unwrap().unwrap().1;
                tx.put(&lab, "title", "gone").unwrap();
            }),
        ),
        (
            "pin a note",
            Box::new(|tx| {
                let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
                let note = tx.get(&notes, "n-ana").unwrap().unwrap().1;
                tx.put(&note, "pinned", true).unwrap();
            }),
        ),
        (
            "start a phase",
            Box::new(|tx| tx.put(ROOT, "currentPhase", "lesson-1").unwrap()),
        ),
        (
            "remove a category",
            Box::new(|tx| {
                let categories = tx.get(ROOT, "categories").unwrap().unwrap().1;
                tx.delete(&categories, "strategies").unwrap();
            }),
        ),
        (
            "hide someone's note",
            Box::new(|tx| {
                let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
                let note = tx.get(&notes, "n-ana").unwrap().unwrap().1;
                tx.put(&note, "hidden", true).unwrap();
            }),
        ),
    ];
    for (what, edit) in &edits {
        let mut lab = Lab::new();
        let change = lab.forked_change(|tx| edit(tx));
        forbidden(lab.send(&observer("a-ana"), vec![change.clone()]));
        lab.send(&facilitator(), vec![change])
            .unwrap_or_else(|err| panic!("the facilitator may {what}: {err}"));
    }
}

#[test]
fn nobody_removes_the_boards_structure() {
    for writer in [observer("a-ana"), facilitator()] {
        let mut lab = Lab::new();
        for key in ["notes", "phases", "lab"] {
            let change = lab.forked_change(|tx| tx.delete(ROOT, key).unwrap());
            forbidden(lab.send(&writer, vec![change]));
            let change = lab.forked_change(|tx| {
                tx.put_object(ROOT, key, ObjType::Map).unwrap();
            });
            forbidden(lab.send(&writer, vec![change]));
        }
        assert_eq!(lab.notes(), 1);
    }
}

#[test]
fn reactions_and_time_outs_are_as_oneself() {
    let mut lab = Lab::new();
    let react = |lab: &Lab, who: &str| {
        let who = who.to_owned();
        lab.forked_change(move |tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let note = tx.get(&notes, "n-ana").unwrap().unwrap().1;
            let reactions = tx.get(&note, "reactions").unwrap().unwrap().1;
            tx.put(&reactions, who.as_str(), 1_i64).unwrap();
        })
    };
    forbidden(lab.send(&observer("a-ben"), vec![react(&lab, "a-cat")]));
    lab.send(&observer("a-ben"), vec![react(&lab, "a-ben")])
        .unwrap();

    let call = |lab: &Lab, by: &str| {
        let by = by.to_owned();
        lab.forked_change(move |tx| {
            let timeouts = tx.get(ROOT, "timeouts").unwrap().unwrap().1;
            let t = tx.put_object(&timeouts, "t1", ObjType::Map).unwrap();
            tx.put(&t, "calledById", by.as_str()).unwrap();
            tx.put(&t, "startedAt", ScalarValue::Int(1)).unwrap();
        })
    };
    forbidden(lab.send(&observer("a-ben"), vec![call(&lab, "a-ana")]));
    let called = call(&lab, "a-ben");
    lab.send(&observer("a-ben"), vec![called.clone()]).unwrap();
    lab.phone.apply_changes([called]).unwrap();
    // Nobody rewrites who called it; anyone ends it (a phone ending its own ends every running
    // time-out of the phase, in case two were called at once).
    let claim = lab.forked_change(|tx| {
        let timeouts = tx.get(ROOT, "timeouts").unwrap().unwrap().1;
        let t = tx.get(&timeouts, "t1").unwrap().unwrap().1;
        tx.put(&t, "calledById", "a-cat").unwrap();
    });
    forbidden(lab.send(&observer("a-cat"), vec![claim]));
    let end = lab.forked_change(|tx| {
        let timeouts = tx.get(ROOT, "timeouts").unwrap().unwrap().1;
        let t = tx.get(&timeouts, "t1").unwrap().unwrap().1;
        tx.put(&t, "endedAt", ScalarValue::Int(2)).unwrap();
    });
    lab.send(&observer("a-cat"), vec![end]).unwrap();
}

/// A root collection of the phone's copy.
fn root_map(tx: &automerge::transaction::Transaction<'_>, key: &str) -> automerge::ObjId {
    tx.get(ROOT, key).unwrap().unwrap().1
}

#[test]
fn picks_are_ones_own() {
    let mut lab = Lab::new();
    let pick = |lab: &Lab, key: &str, value: ScalarValue| {
        let key = key.to_owned();
        lab.forked_change(move |tx| {
            let picks = root_map(tx, "picks");
            tx.put(&picks, key.as_str(), value).unwrap();
        })
    };
    forbidden(lab.send(
        &observer("a-ben"),
        vec![pick(&lab, "a-ana:n-ana", ScalarValue::Int(1))],
    ));
    forbidden(lab.send(
        &observer("a-ben"),
        vec![pick(&lab, "a-ben", ScalarValue::Int(1))],
    ));
    forbidden(lab.send(
        &observer("a-ben"),
        vec![pick(&lab, "a-ben:n-ana", ScalarValue::Str("x".into()))],
    ));
    let own = pick(&lab, "a-ben:n-ana", ScalarValue::Int(1));
    lab.send(&observer("a-ben"), vec![own.clone()]).unwrap();
    lab.phone.apply_changes([own]).unwrap();
    let take_back = lab.forked_change(|tx| {
        let picks = root_map(tx, "picks");
        tx.delete(&picks, "a-ben:n-ana").unwrap();
    });
    forbidden(lab.send(&observer("a-ana"), vec![take_back.clone()]));
    lab.send(&observer("a-ben"), vec![take_back]).unwrap();
    // An object under `picks` would make a second map a phone's key could hide behind.
    let object = lab.forked_change(|tx| {
        let picks = root_map(tx, "picks");
        tx.put_object(&picks, "a-ben:n-x", ObjType::Map).unwrap();
    });
    forbidden(lab.send(&observer("a-ben"), vec![object]));
}

#[test]
fn next_steps_are_each_coachs_own() {
    let mut lab = Lab::new();
    let write = |lab: &Lab, id: &str, author: &str| {
        let (id, author) = (id.to_owned(), author.to_owned());
        lab.forked_change(move |tx| {
            let steps = root_map(tx, "nextSteps");
            let step = tx.put_object(&steps, id.as_str(), ObjType::Map).unwrap();
            tx.put(&step, "text", "Try wait time").unwrap();
            tx.put(&step, "authorId", author.as_str()).unwrap();
            tx.put(&step, "createdAt", ScalarValue::Int(1)).unwrap();
        })
    };
    forbidden(lab.send(&observer("a-ben"), vec![write(&lab, "s-fake", "a-ana")]));
    let ana = write(&lab, "s-ana", "a-ana");
    lab.send(&observer("a-ana"), vec![ana.clone()]).unwrap();
    lab.phone.apply_changes([ana]).unwrap();
    let edit = lab.forked_change(|tx| {
        let steps = root_map(tx, "nextSteps");
        let step = tx.get(&steps, "s-ana").unwrap().unwrap().1;
        tx.put(&step, "text", "rewritten").unwrap();
    });
    let delete = lab.forked_change(|tx| {
        let steps = root_map(tx, "nextSteps");
        tx.delete(&steps, "s-ana").unwrap();
    });
    forbidden(lab.send(&observer("a-ben"), vec![edit.clone()]));
    forbidden(lab.send(&observer("a-ben"), vec![delete.clone()]));
    lab.send(&observer("a-ana"), vec![edit]).unwrap();
    lab.send(&observer("a-ana"), vec![delete]).unwrap();
}

#[test]
fn a_time_out_is_taken_back_only_by_its_caller_while_it_runs() {
    let mut lab = Lab::new();
    let call = |lab: &Lab, id: &str| {
        let id = id.to_owned();
        lab.forked_change(move |tx| {
            let timeouts = root_map(tx, "timeouts");
            let t = tx.put_object(&timeouts, id.as_str(), ObjType::Map).unwrap();
            tx.put(&t, "calledById", "a-ben").unwrap();
            tx.put(&t, "startedAt", ScalarValue::Int(1)).unwrap();
        })
    };
    let take_back = |lab: &Lab, id: &str| {
        let id = id.to_owned();
        lab.forked_change(move |tx| {
            let timeouts = root_map(tx, "timeouts");
            tx.delete(&timeouts, id.as_str()).unwrap();
        })
    };
    for id in ["t1", "t2"] {
        let called = call(&lab, id);
        lab.send(&observer("a-ben"), vec![called.clone()]).unwrap();
        lab.phone.apply_changes([called]).unwrap();
    }
    forbidden(lab.send(&observer("a-ana"), vec![take_back(&lab, "t1")]));
    lab.send(&observer("a-ben"), vec![take_back(&lab, "t1")])
        .unwrap();
    // Once ended, it is part of the lab's record.
    let end = lab.forked_change(|tx| {
        let timeouts = root_map(tx, "timeouts");
        let t = tx.get(&timeouts, "t2").unwrap().unwrap().1;
        tx.put(&t, "endedAt", ScalarValue::Int(2)).unwrap();
    });
    lab.send(&observer("a-ana"), vec![end.clone()]).unwrap();
    lab.phone.apply_changes([end]).unwrap();
    forbidden(lab.send(&observer("a-ben"), vec![take_back(&lab, "t2")]));
}

#[test]
fn a_whole_document_from_a_phone_is_checked_change_by_change() {
    let mut lab = Lab::new();
    let mine = lab.note_change("n-doc", "a-ana");
    lab.phone.apply_changes([mine]).unwrap();
    // The phone sends its whole document, as automerge does when most of it is new to us.
    let message = sync::Message {
        heads: lab.phone.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::from(lab.phone.save()),
        flags: None,
        version: sync::MessageVersion::V2,
    };
    lab.state
        .receive(
            1,
            PeerId::from("phone"),
            &observer("a-ana"),
            SyncKind::Sync,
            message,
        )
        .unwrap();
    assert_eq!(lab.notes(), 2);
    // Not so for a document holding someone else's forgery.
    let mut forged = lab.phone.fork();
    let notes = forged.get(ROOT, "notes").unwrap().unwrap().1;
    let mut tx = forged.transaction();
    tx.delete(&notes, "n-ana").unwrap();
    tx.commit();
    let message = sync::Message {
        heads: forged.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::from(forged.save()),
        flags: None,
        version: sync::MessageVersion::V2,
    };
    let refused = lab
        .state
        .receive(
            2,
            PeerId::from("eve"),
            &observer("a-ben"),
            SyncKind::Sync,
            message,
        )
        .map_err(Box::new);
    assert!(
        matches!(refusal(&refused), Some(Refusal::Forbidden { .. })),
        "{refused:?}"
    );
    assert_eq!(lab.notes(), 2);
}

#[test]
fn garbage_chunks_are_refused_as_undecodable() {
    let mut lab = Lab::new();
    let honest = lab.note_change("n-g", "a-ana");
    let mut bytes = honest.raw_bytes().to_vec();
    // A wrong checksum.
    bytes[5] ^= 0xff;
    for chunk in [
        bytes,
        b"not automerge".to_vec(),
        vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 9, 1, 0],
    ] {
        let message = sync::Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: sync::ChunkList::from(vec![chunk]),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        let result = lab
            .state
            .receive(
                1,
                PeerId::from("phone"),
                &observer("a-ana"),
                SyncKind::Sync,
                message,
            )
            .map_err(Box::new);
        assert!(
            matches!(refusal(&result), Some(Refusal::Undecodable(_))),
            "{result:?}"
        );
    }
    let _ = lab.phone.generate_sync_message(&mut sync::State::new());
}

/// A photo id: the SHA-256 of some bytes, in 64 lowercase hex digits.
fn photo(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// The `photos` list of note `id` on the phone's copy.
fn photos_of(tx: &automerge::transaction::Transaction<'_>, id: &str) -> automerge::ObjId {
    let note = tx.get(root_map(tx, "notes"), id).unwrap().unwrap().1;
    tx.get(&note, "photos").unwrap().unwrap().1
}

/// Sends `change` as `writer`; once it passes, the phone has it too.
fn accepted(lab: &mut Lab, writer: &Writer, change: Change) {
    lab.send(writer, vec![change.clone()])
        .unwrap_or_else(|err| panic!("refused: {err}"));
    lab.phone.apply_changes([change]).unwrap();
}

fn photo_count(lab: &Lab) -> usize {
    let doc = lab.state.doc();
    let notes = doc.get(ROOT, "notes").unwrap().unwrap().1;
    let note = doc.get(&notes, "n-ana").unwrap().unwrap().1;
    let photos = doc.get(&note, "photos").unwrap().unwrap().1;
    doc.length(&photos)
}

#[test]
fn a_note_refers_to_at_most_four_photos_by_their_ids() {
    let mut lab = Lab::new();
    // Ana adds two photos to her note, then two more: four.
    let two = lab.forked_change(|tx| {
        let note = tx.get(root_map(tx, "notes"), "n-ana").unwrap().unwrap().1;
        let photos = tx.put_object(&note, "photos", ObjType::List).unwrap();
        tx.insert(&photos, 0, photo(1)).unwrap();
        tx.insert(&photos, 1, photo(2)).unwrap();
    });
    accepted(&mut lab, &observer("a-ana"), two);
    let more = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.insert(&photos, 2, photo(3)).unwrap();
        tx.insert(&photos, 3, photo(4)).unwrap();
    });
    accepted(&mut lab, &observer("a-ana"), more);
    assert_eq!(photo_count(&lab), 4);

    // A fifth is refused, from the author and from the facilitator alike.
    let fifth = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.insert(&photos, 4, photo(5)).unwrap();
    });
    for writer in [observer("a-ana"), facilitator()] {
        let reason = forbidden(lab.send(&writer, vec![fifth.clone()]));
        assert!(reason.contains("at most 4 photos"), "{reason}");
    }
    // So is a note created with five.
    let five = lab.forked_change(|tx| {
        let note = tx
            .put_object(root_map(tx, "notes"), "n-five", ObjType::Map)
            .unwrap();
        tx.put(&note, "authorId", "a-ana").unwrap();
        let photos = tx.put_object(&note, "photos", ObjType::List).unwrap();
        for i in 0..5 {
            tx.insert(&photos, i, photo(10 + i as u8)).unwrap();
        }
    });
    let reason = forbidden(lab.send(&observer("a-ana"), vec![five]));
    assert!(reason.contains("at most 4 photos"), "{reason}");
    assert_eq!(lab.notes(), 1);

    // Taking one out and adding another in one change leaves four: it passes.
    let swap = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.insert(&photos, 4, photo(6)).unwrap();
        tx.delete(&photos, 0).unwrap();
    });
    accepted(&mut lab, &observer("a-ana"), swap);
    // Two changes in one message: the second's fifth is refused with the first.
    let take_out = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.delete(&photos, 0).unwrap();
    });
    let mut ahead = lab.phone.fork();
    ahead.apply_changes([take_out.clone()]).unwrap();
    let two_in = {
        let photos = {
            let notes = ahead.get(ROOT, "notes").unwrap().unwrap().1;
            let note = ahead.get(&notes, "n-ana").unwrap().unwrap().1;
            ahead.get(&note, "photos").unwrap().unwrap().1
        };
        let mut tx = ahead.transaction();
        tx.insert(&photos, 0, photo(8)).unwrap();
        tx.insert(&photos, 0, photo(9)).unwrap();
        tx.commit();
        ahead.get_last_local_change().unwrap().clone()
    };
    let reason = forbidden(lab.send(&observer("a-ana"), vec![take_out, two_in]));
    assert!(reason.contains("leaves 5"), "{reason}");
    let replace = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.put(&photos, 0, photo(7)).unwrap();
    });
    // So does replacing one in place.
    accepted(&mut lab, &observer("a-ana"), replace);
    assert_eq!(photo_count(&lab), 4);
}

#[test]
fn a_photo_is_written_as_its_id_and_nothing_else() {
    let mut lab = Lab::new();
    let list = lab.forked_change(|tx| {
        let note = tx.get(root_map(tx, "notes"), "n-ana").unwrap().unwrap().1;
        tx.put_object(&note, "photos", ObjType::List).unwrap();
    });
    accepted(&mut lab, &observer("a-ana"), list);
    let bad: Vec<(&str, Edit)> = vec![
        (
            "upper case",
            Box::new(|tx| {
                let photos = photos_of(tx, "n-ana");
                tx.insert(&photos, 0, photo(0xab).to_uppercase()).unwrap();
            }),
        ),
        (
            "63 digits",
            Box::new(|tx| {
                let photos = photos_of(tx, "n-ana");
                tx.insert(&photos, 0, &photo(1)[1..]).unwrap();
            }),
        ),
        (
            "a number",
            Box::new(|tx| {
                let photos = photos_of(tx, "n-ana");
                tx.insert(&photos, 0, 7_i64).unwrap();
            }),
        ),
        (
            "an object",
            Box::new(|tx| {
                let photos = photos_of(tx, "n-ana");
                tx.insert_object(&photos, 0, ObjType::Map).unwrap();
            }),
        ),
        (
            "photos as a string",
            Box::new(|tx| {
                let note = tx.get(root_map(tx, "notes"), "n-ana").unwrap().unwrap().1;
                tx.put(&note, "photos", photo(1)).unwrap();
            }),
        ),
        (
            "photos as a map",
            Box::new(|tx| {
                let note = tx.get(root_map(tx, "notes"), "n-ana").unwrap().unwrap().1;
                tx.put_object(&note, "photos", ObjType::Map).unwrap();
            }),
        ),
    ];
    for (what, edit) in &bad {
        let change = lab.forked_change(|tx| edit(tx));
        let reason = forbidden(lab.send(&observer("a-ana"), vec![change]));
        assert!(reason.contains("photo"), "{what}: {reason}");
    }
    assert_eq!(photo_count(&lab), 0);
    // The same message with a good id passes.
    let good = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.insert(&photos, 0, photo(1)).unwrap();
    });
    accepted(&mut lab, &observer("a-ana"), good);
    assert_eq!(photo_count(&lab), 1);
}

#[test]
fn photos_are_their_authors_and_hiding_one_is_the_facilitators() {
    let mut lab = Lab::new();
    let add = |lab: &Lab| {
        lab.forked_change(|tx| {
            let note = tx.get(root_map(tx, "notes"), "n-ana").unwrap().unwrap().1;
            let photos = tx.put_object(&note, "photos", ObjType::List).unwrap();
            tx.insert(&photos, 0, photo(1)).unwrap();
        })
    };
    let reason = forbidden(lab.send(&observer("a-ben"), vec![add(&lab)]));
    assert!(reason.contains("notes of others"), "{reason}");
    let mine = add(&lab);
    accepted(&mut lab, &observer("a-ana"), mine);
    let another = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.insert(&photos, 1, photo(2)).unwrap();
    });
    let reason = forbidden(lab.send(&observer("a-ben"), vec![another.clone()]));
    assert!(reason.contains("notes of others"), "{reason}");
    let remove = lab.forked_change(|tx| {
        let photos = photos_of(tx, "n-ana");
        tx.delete(&photos, 0).unwrap();
    });
    forbidden(lab.send(&observer("a-ben"), vec![remove]));
    accepted(&mut lab, &observer("a-ana"), another);

    // Hiding a photo: the facilitator's, not even the author's.
    let hide = |lab: &Lab, key: String, value: ScalarValue| {
        lab.forked_change(move |tx| {
            let note = tx.get(root_map(tx, "notes"), "n-ana").unwrap().unwrap().1;
            let hidden = tx.put_object(&note, "hiddenPhotos", ObjType::Map).unwrap();
            tx.put(&hidden, key.as_str(), value).unwrap();
        })
    };
    for who in ["a-ana", "a-ben"] {
        let reason = forbidden(lab.send(
            &observer(who),
            vec![hide(&lab, photo(1), ScalarValue::Boolean(true))],
        ));
        assert!(
            reason.contains("`hiddenPhotos` of a note is the facilitator's"),
            "{reason}"
        );
    }
    for (key, value) in [
        ("not a photo id".to_owned(), ScalarValue::Boolean(true)),
        (photo(1), ScalarValue::Boolean(false)),
        (photo(1), ScalarValue::Str("yes".into())),
    ] {
        let reason = forbidden(lab.send(&facilitator(), vec![hide(&lab, key, value)]));
        assert!(reason.contains("hiddenPhotos"), "{reason}");
    }
    let hidden = hide(&lab, photo(1), ScalarValue::Boolean(true));
    accepted(&mut lab, &facilitator(), hidden);
    // Showing it again: the facilitator's too.
    let show = lab.forked_change(|tx| {
        let note = tx.get(root_map(tx, "notes"), "n-ana").unwrap().unwrap().1;
        let hidden = tx.get(&note, "hiddenPhotos").unwrap().unwrap().1;
        tx.delete(&hidden, photo(1).as_str()).unwrap();
    });
    forbidden(lab.send(&observer("a-ana"), vec![show.clone()]));
    accepted(&mut lab, &facilitator(), show);
    assert_eq!(photo_count(&lab), 2);
}
