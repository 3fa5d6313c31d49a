//! The lab board: the shape of the one Automerge document each lab has.
//!
//! The server creates the document when a lab is created ([`new_board`]); phones and the
//! projector then edit it through automerge-repo. Shapes are chosen to merge well: collections
//! are maps keyed by a random id, never lists, so two phones adding notes at once both keep
//! theirs, and a field two people may edit at once is collaborative text.
//!
//! # Schema, version 3
//!
//! ```text
//! schemaVersion: uint                  3 for this layout
//! lab: {                               what the facilitator entered at creation
//!   title, school, grade,              text
//!   date,                              text, "YYYY-MM-DD" or ""
//!   problemOfPractice,                 text
//!   mathematicalGoal,                  text
//!   lessonTask                         text
//!   pickLimit?: int                    how many notes each person may pick; 7 when absent (v3)
//! }
//! phases: {                            map keyed by phase id; DEFAULT_PHASES at creation
//!   <id>: {
//!     label: text,                     the facilitator may rename
//!     order: f64,                      sort key; reordering changes only this
//!     startedAt?: int, endedAt?: int   ms since the epoch
//!   }
//! }
//! currentPhase?: str                   a key of `phases`; absent until the facilitator starts one
//! timeouts: {                          teacher time-outs, keyed by a random id
//!   <id>: {
//!     phase: str,                      a key of `phases` (a lesson)
//!     calledBy: str, calledById: str,  display name and device id of who called it
//!     startedAt: int, endedAt?: int,   ms since the epoch
//!     note?: str
//!   }
//! }
//! categories: {                        map keyed by category id; DEFAULT_CATEGORIES at creation
//!   <id>: { label: text, color: text "#rrggbb", order: f64 }
//! }
//! children: {                          the lab's children, keyed by the alias itself
//!   <alias>: { addedBy: str, addedAt: int }
//! }
//! notes: {                             map keyed by note id (written by clients)
//!   <id>: {
//!     text: str,                       the observation; only its author edits it
//!     category: str,                   a key of `categories`
//!     authorName: str,                 display name at the time of writing
//!     authorId: str,                   stable id of the author's device
//!     createdAt: int,                  ms since the epoch, from the author's clock
//!     children: [str],                 aliases or initials, never full names
//!     reactions: { <deviceId>: int },  "I saw that too", one per device, ms since the epoch;
//!                                      created (empty) with the note
//!     phase?: str, minute?: int,       where and when it was written (minutes into the phase)
//!     timeoutId?: str,                 a key of `timeouts`, if written during one
//!     pinned?: bool, highlighted?: bool, hidden?: bool,   facilitator flags
//!     clusterId?: str,                 a key of `clusters`
//!     editedAt?: int,
//!     photos?: [str],                  photo ids (the SHA-256 of the photo, 64 lowercase hex),
//!                                      at most 4, in the order the author added them; only
//!                                      the author writes them (the photos live outside the
//!                                      document: `/api/labs/{labId}/photos/{id}`)
//!     hiddenPhotos?: { <photoId>: true }   photos the facilitator hid from the board
//!   }
//! }
//! clusters: {                          debrief groups of notes, keyed by a random id
//!   <id>: { label: text, order: f64, createdAt: int }
//! }
//! agreements: {                        agreements and next steps, keyed by a random id
//!   <id>: { text: text, owner?: str, phase?: str, createdAt: int, order: f64 }
//! }
//! picks: {                             the debrief's sticky notes (v3): each person's strongest
//!   "<authorId>:<noteId>": int         evidence, one entry per person and note, ms since the
//! }                                    epoch; readers count each person's first `pickLimit`
//! nextSteps: {                         each coach's next steps with their own teachers (v3)
//!   <id>: {
//!     text: str,                       only its author edits it
//!     authorId: str, authorName: str,  who wrote it, as for notes
//!     phase: str,                      where it was written (the final debrief, usually)
//!     createdAt: int, editedAt?: int
//!   }
//! }
//! ```
//!
//! [`FIELDS`] lists every path of this schema; [`specimen`] writes a board with each one set,
//! which the web client's readers are tested against (`web-client/src/model.test.ts`).
//!
//! "text" is an Automerge text object (what the JavaScript client reads as a plain string and
//! writes for a string); "str" is a scalar string, cheaper for values only their author sets.
//! An `order` is a number: writers use f64 so an item can go between two others, readers accept
//! ints too (version 1 wrote ints). Readers must treat every field as optional and ignore keys
//! they do not know, so later versions can add fields; a version that changes the meaning of a
//! field bumps `schemaVersion`.
//!
//! A map two people may write into at once must exist before either does: two replicas that
//! each create a missing map under the same key make two objects, and the merge shows only one.
//! So every collection exists from [`new_board`] on, and a note is created with its empty
//! `reactions`.
//!
//! # Upgrades
//!
//! Version 1 had `schemaVersion`, `lab`, `categories` (with int `order`s) and `notes` (without
//! `reactions`). [`upgrade`] brings such a board to version 2 in one change: it sets
//! `schemaVersion`, adds each missing collection (`phases` with [`DEFAULT_PHASES`], `categories`
//! with [`DEFAULT_CATEGORIES`], the others empty) and gives every note lacking them an empty
//! `reactions` and `children`. Besides `schemaVersion` it changes no value that exists, and it
//! is idempotent. The server runs it whenever it loads a stored board, before serving it.
//! Default phase ids are fixed, so two replicas that upgrade the same board at once still merge
//! to one set of phases; each has created its own `phases` map, though, and the merge shows only
//! one, so anything written into the other before the merge would be hidden. That is why the
//! server upgrades a board once, before anyone sees it, and clients do not. Documents that are
//! not boards, and boards of a newer version, are left alone.
//!
//! Version 3 added `picks`, `nextSteps` and `lab.pickLimit`; [`upgrade`] adds the two maps
//! (empty) to a version 2 board, and `pickLimit` stays absent until the facilitator sets it.
//!
//! A note's `photos` and `hiddenPhotos` came later, within version 3: they only add fields, a
//! note without them reads as having no photos and none hidden, and an upgrade has nothing to
//! add, so `schemaVersion` stays 3. Readers take only valid ids ([`is_photo_id`]), the first
//! [`MAX_NOTE_PHOTOS`] of them. `hiddenPhotos` is created by the facilitator's first hide of
//! one of the note's photos.

mod specimen;
pub use specimen::{paths, specimen};

use automerge::transaction::Transactable;
use automerge::{
    ActorId, Automerge, AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT,
};

/// The schema version [`new_board`] writes and [`upgrade`] brings boards to.
pub const BOARD_SCHEMA_VERSION: u64 = 3;

/// The most photos a note refers to (`notes.<id>.photos`).
pub const MAX_NOTE_PHOTOS: usize = 4;

/// Whether `id` is written as a photo id is: the SHA-256 of the photo in 64 lowercase hex digits.
pub fn is_photo_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The categories a new lab starts with: (id, label, colour); a category's `order` is its
/// position here.
pub const DEFAULT_CATEGORIES: [(&str, &str, &str); 5] = [
    ("student-thinking", "Student thinking", "#2563eb"),
    ("strategies", "Strategies", "#16a34a"),
    ("teacher-moves", "Teacher moves", "#9333ea"),
    ("wonderings", "Wonderings / questions", "#ea580c"),
    ("next-steps", "Next steps", "#0f766e"),
];

/// The phases of the lab routine a new board starts with: (id, label, order). The ids are fixed
/// rather than random so that two upgrades of one board write the same keys; phases the
/// facilitator adds get random ids.
pub const DEFAULT_PHASES: [(&str, &str, f64); 5] = [
    ("plan", "Plan", 0.0),
    ("lesson-1", "Lesson 1", 1.0),
    ("debrief-1", "Debrief 1", 2.0),
    ("lesson-2", "Lesson 2", 3.0),
    ("final-debrief", "Final debrief", 4.0),
];

/// The default phases that are lessons, where teacher time-outs happen.
pub const LESSON_PHASES: [&str; 2] = ["lesson-1", "lesson-2"];

/// The maps at the root of a board besides `lab`, in the order [`new_board`] writes them.
pub const COLLECTIONS: [&str; 9] = [
    "phases",
    "timeouts",
    "categories",
    "children",
    "notes",
    "clusters",
    "agreements",
    "picks",
    "nextSteps",
];

/// Every path of the schema: map keys from the root, `*` for any key of a collection, `[]` for
/// any element of a list. The web client keeps the same list (`BOARD_FIELDS` in
/// `web-client/src/model.ts`); both are checked against [`specimen`].
pub const FIELDS: [&str; 79] = [
    "schemaVersion",
    "lab",
    "lab.title",
    "lab.school",
    "lab.grade",
    "lab.date",
    "lab.problemOfPractice",
    "lab.mathematicalGoal",
    "lab.lessonTask",
    "lab.pickLimit",
    "phases",
    "phases.*",
    "phases.*.label",
    "phases.*.order",
    "phases.*.startedAt",
    "phases.*.endedAt",
    "currentPhase",
    "timeouts",
    "timeouts.*",
    "timeouts.*.phase",
    "timeouts.*.calledBy",
    "timeouts.*.calledById",
    "timeouts.*.startedAt",
    "timeouts.*.endedAt",
    "timeouts.*.note",
    "categories",
    "categories.*",
    "categories.*.label",
    "categories.*.color",
    "categories.*.order",
    "children",
    "children.*",
    "children.*.addedBy",
    "children.*.addedAt",
    "notes",
    "notes.*",
    "notes.*.text",
    "notes.*.category",
    "notes.*.authorName",
    "notes.*.authorId",
    "notes.*.createdAt",
    "notes.*.children",
    "notes.*.children.[]",
    "notes.*.reactions",
    "notes.*.reactions.*",
    "notes.*.phase",
    "notes.*.minute",
    "notes.*.timeoutId",
    "notes.*.pinned",
    "notes.*.highlighted",
    "notes.*.hidden",
    "notes.*.clusterId",
    "notes.*.editedAt",
    "notes.*.photos",
    "notes.*.photos.[]",
    "notes.*.hiddenPhotos",
    "notes.*.hiddenPhotos.*",
    "clusters",
    "clusters.*",
    "clusters.*.label",
    "clusters.*.order",
    "clusters.*.createdAt",
    "agreements",
    "agreements.*",
    "agreements.*.text",
    "agreements.*.owner",
    "agreements.*.phase",
    "agreements.*.createdAt",
    "agreements.*.order",
    "picks",
    "picks.*",
    "nextSteps",
    "nextSteps.*",
    "nextSteps.*.text",
    "nextSteps.*.authorId",
    "nextSteps.*.authorName",
    "nextSteps.*.phase",
    "nextSteps.*.createdAt",
    "nextSteps.*.editedAt",
];

/// What the facilitator says about a lab when creating it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabInfo {
    pub title: String,
    pub school: String,
    pub grade: String,
    /// `YYYY-MM-DD`, or empty.
    pub date: String,
}

/// A new board for a lab, as one change by `actor`.
pub fn new_board(info: &LabInfo, actor: ActorId) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor);
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(ROOT, "schemaVersion", BOARD_SCHEMA_VERSION)?;
        let lab = tx.put_object(ROOT, "lab", ObjType::Map)?;
        for (key, value) in [
            ("title", info.title.as_str()),
            ("school", &info.school),
            ("grade", &info.grade),
            ("date", &info.date),
            ("problemOfPractice", ""),
            ("mathematicalGoal", ""),
            ("lessonTask", ""),
        ] {
            put_text(tx, &lab, key, value)?;
        }
        for key in COLLECTIONS {
            put_collection(tx, key)?;
        }
        Ok(())
    })
    .expect("building a fresh document in memory cannot fail");
    doc
}

/// Brings a board of an older version (or one missing pieces) to [`BOARD_SCHEMA_VERSION`] as one
/// change by the document's actor, adding what is missing and changing nothing that exists (see
/// the module docs). Returns whether it made a change: `false` for an up-to-date board, a board
/// of a newer version, or a document that is not a board (neither `schemaVersion` nor `lab`).
pub fn upgrade(doc: &mut Automerge) -> Result<bool, AutomergeError> {
    let Some(version) = board_version(doc)? else {
        return Ok(false);
    };
    if version > BOARD_SCHEMA_VERSION {
        return Ok(false);
    }
    let done = doc
        .transact::<_, _, AutomergeError>(|tx| {
            if version < BOARD_SCHEMA_VERSION {
                tx.put(ROOT, "schemaVersion", BOARD_SCHEMA_VERSION)?;
            }
            if tx.get(ROOT, "lab")?.is_none() {
                tx.put_object(ROOT, "lab", ObjType::Map)?;
            }
            for key in COLLECTIONS {
                if tx.get(ROOT, key)?.is_none() {
                    put_collection(tx, key)?;
                }
            }
            let Some(notes) = map_at(tx, &ROOT, "notes")? else {
                return Ok(());
            };
            let ids: Vec<String> = tx.keys(&notes).collect();
            for id in ids {
                let Some(note) = map_at(tx, &notes, &id)? else {
                    continue;
                };
                if tx.get(&note, "reactions")?.is_none() {
                    tx.put_object(&note, "reactions", ObjType::Map)?;
                }
                if tx.get(&note, "children")?.is_none() {
                    tx.put_object(&note, "children", ObjType::List)?;
                }
            }
            Ok(())
        })
        .map_err(|failure| failure.error)?;
    Ok(done.hash.is_some())
}

/// The schema version of a board: its `schemaVersion`, or 0 for a board from before there was
/// one (a `lab` map but no version). `None` if the document is not a board we can read.
pub fn board_version(doc: &impl ReadDoc) -> Result<Option<u64>, AutomergeError> {
    match doc.get(ROOT, "schemaVersion")? {
        Some((Value::Scalar(scalar), _)) => Ok(match scalar.as_ref() {
            ScalarValue::Uint(version) => Some(*version),
            ScalarValue::Int(version) => u64::try_from(*version).ok(),
            _ => None,
        }),
        Some(_) => Ok(None),
        None => Ok(map_at(doc, &ROOT, "lab")?.map(|_| 0)),
    }
}

/// The map at `key` of `obj`, if there is one.
fn map_at(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Result<Option<ObjId>, AutomergeError> {
    Ok(match doc.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Some(id),
        _ => None,
    })
}

/// Creates the root collection `key` with its initial content.
fn put_collection(tx: &mut impl Transactable, key: &str) -> Result<(), AutomergeError> {
    let map = tx.put_object(ROOT, key, ObjType::Map)?;
    match key {
        "phases" => {
            for (id, label, order) in DEFAULT_PHASES {
                let phase = tx.put_object(&map, id, ObjType::Map)?;
                put_text(tx, &phase, "label", label)?;
                tx.put(&phase, "order", order)?;
            }
        }
        "categories" => {
            for (order, (id, label, color)) in (0u8..).zip(DEFAULT_CATEGORIES) {
                let category = tx.put_object(&map, id, ObjType::Map)?;
                put_text(tx, &category, "label", label)?;
                put_text(tx, &category, "color", color)?;
                tx.put(&category, "order", f64::from(order))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn put_text(
    tx: &mut impl Transactable,
    obj: &ObjId,
    key: &str,
    value: &str,
) -> Result<(), AutomergeError> {
    let text = tx.put_object(obj, key, ObjType::Text)?;
    tx.splice_text(&text, 0, 0, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value as Json};

    /// A board exactly as version 1 of [`new_board`] wrote it.
    fn v1_board(info: &LabInfo, actor: ActorId) -> Automerge {
        let mut doc = Automerge::new().with_actor(actor);
        doc.transact::<_, _, AutomergeError>(|tx| {
            tx.put(ROOT, "schemaVersion", 1_u64)?;
            let lab = tx.put_object(ROOT, "lab", ObjType::Map)?;
            for (key, value) in [
                ("title", info.title.as_str()),
                ("school", &info.school),
                ("grade", &info.grade),
                ("date", &info.date),
                ("problemOfPractice", ""),
                ("mathematicalGoal", ""),
                ("lessonTask", ""),
            ] {
                let text = tx.put_object(&lab, key, ObjType::Text)?;
                tx.splice_text(&text, 0, 0, value)?;
            }
            let categories = tx.put_object(ROOT, "categories", ObjType::Map)?;
            for (order, (id, label, color)) in DEFAULT_CATEGORIES.iter().enumerate() {
                let category = tx.put_object(&categories, *id, ObjType::Map)?;
                let text = tx.put_object(&category, "label", ObjType::Text)?;
                tx.splice_text(&text, 0, 0, label)?;
                let text = tx.put_object(&category, "color", ObjType::Text)?;
                tx.splice_text(&text, 0, 0, color)?;
                tx.put(&category, "order", i64::try_from(order).unwrap_or(i64::MAX))?;
            }
            tx.put_object(ROOT, "notes", ObjType::Map)?;
            Ok(())
        })
        .unwrap();
        doc
    }

    /// Adds a note as a version 1 client did (no `reactions`), or as a version 2 client does.
    fn add_note(doc: &mut Automerge, id: &str, text: &str, v2: bool) {
        doc.transact::<_, _, AutomergeError>(|tx| {
            let notes = map_at(tx, &ROOT, "notes")?.unwrap();
            let note = tx.put_object(&notes, id, ObjType::Map)?;
            tx.put(&note, "text", text)?;
            tx.put(&note, "category", "student-thinking")?;
            tx.put(&note, "authorName", "Ana")?;
            tx.put(&note, "authorId", "device-ana")?;
            tx.put(&note, "createdAt", 1_763_900_000_000_i64)?;
            let children = tx.put_object(&note, "children", ObjType::List)?;
            tx.insert(&children, 0, "T.")?;
            if v2 {
                tx.put_object(&note, "reactions", ObjType::Map)?;
            }
            Ok(())
        })
        .unwrap();
    }

    /// The object at `path` (map keys from the root).
    fn obj_at(doc: &Automerge, path: &[&str]) -> ObjId {
        path.iter()
            .fold(ROOT, |obj, key| map_at(doc, &obj, key).unwrap().unwrap())
    }

    fn react(doc: &mut Automerge, note: &str, device: &str, at: i64) {
        let reactions = obj_at(doc, &["notes", note, "reactions"]);
        doc.transact::<_, _, AutomergeError>(|tx| tx.put(&reactions, device, at))
            .unwrap();
    }

    /// The document as JSON: text as strings, f64 as floats, so `0` and `0.0` differ.
    fn to_json(doc: &Automerge) -> Json {
        object_json(doc, &ROOT)
    }

    fn object_json(doc: &Automerge, obj: &ObjId) -> Json {
        match doc.object_type(obj).unwrap() {
            ObjType::Text => Json::String(doc.text(obj).unwrap()),
            ObjType::List => (0..doc.length(obj))
                .map(|i| {
                    let (value, id) = doc.get(obj, i).unwrap().unwrap();
                    value_json(doc, &value, &id)
                })
                .collect(),
            ObjType::Map | ObjType::Table => doc
                .keys(obj)
                .map(|key| {
                    let (value, id) = doc.get(obj, &key).unwrap().unwrap();
                    (key, value_json(doc, &value, &id))
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    fn value_json(doc: &Automerge, value: &Value<'_>, id: &ObjId) -> Json {
        match value {
            Value::Object(_) => object_json(doc, id),
            Value::Scalar(scalar) => match scalar.as_ref() {
                ScalarValue::Str(s) => json!(s.to_string()),
                ScalarValue::Int(n) => json!(n),
                ScalarValue::Uint(n) => json!(n),
                ScalarValue::F64(n) => json!(n),
                ScalarValue::Boolean(b) => json!(b),
                ScalarValue::Null => Json::Null,
                other => json!(format!("{other:?}")),
            },
        }
    }

    /// Whether every value of `old` is in `new` unchanged (`new` may have more).
    fn keeps(new: &Json, old: &Json) -> bool {
        match (new, old) {
            (Json::Object(new), Json::Object(old)) => old
                .iter()
                .all(|(key, value)| new.get(key).is_some_and(|n| keeps(n, value))),
            _ => new == old,
        }
    }

    fn default_phases_json() -> Json {
        DEFAULT_PHASES
            .iter()
            .map(|(id, label, order)| ((*id).to_owned(), json!({ "label": label, "order": order })))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    fn info() -> LabInfo {
        LabInfo {
            title: "Making ten".into(),
            school: "Hillside".into(),
            grade: "2".into(),
            date: "2026-11-23".into(),
        }
    }

    #[test]
    fn a_new_board_has_the_documented_shape() {
        let doc = new_board(&info(), ActorId::random());
        assert_eq!(doc.get_heads().len(), 1, "one change");
        let board = to_json(&doc);
        assert_eq!(board["schemaVersion"], json!(BOARD_SCHEMA_VERSION));
        assert_eq!(board["lab"]["title"], "Making ten");
        assert_eq!(board["lab"]["date"], "2026-11-23");
        assert_eq!(board["lab"]["lessonTask"], "");
        assert_eq!(board["phases"], default_phases_json());
        assert!(board.get("currentPhase").is_none(), "{board}");
        assert_eq!(
            board["categories"]["student-thinking"],
            json!({ "label": "Student thinking", "color": "#2563eb", "order": 0.0 })
        );
        assert_eq!(board["categories"]["next-steps"]["order"], json!(4.0));
        assert_eq!(
            board["categories"].as_object().unwrap().len(),
            DEFAULT_CATEGORIES.len()
        );
        for key in [
            "timeouts",
            "children",
            "notes",
            "clusters",
            "agreements",
            "picks",
            "nextSteps",
        ] {
            assert_eq!(board[key], json!({}), "{key}");
        }
        assert!(
            LESSON_PHASES
                .iter()
                .all(|id| DEFAULT_PHASES.iter().any(|(p, _, _)| p == id)),
            "lessons are default phases"
        );
    }

    #[test]
    fn a_new_board_needs_no_upgrade() {
        let mut doc = new_board(&info(), ActorId::random());
        let heads = doc.get_heads();
        assert!(!upgrade(&mut doc).unwrap());
        assert_eq!(doc.get_heads(), heads);
    }

    #[test]
    fn a_version_1_board_is_upgraded_in_one_change_that_keeps_its_values() {
        let mut doc = v1_board(&info(), ActorId::random());
        add_note(&mut doc, "note-1", "T. counted by 2s", false);
        let before = to_json(&doc);
        let changes = doc.get_changes(&[]).len();

        assert!(upgrade(&mut doc).unwrap());
        assert_eq!(doc.get_changes(&[]).len(), changes + 1, "one change");
        let after = to_json(&doc);
        assert_eq!(after["schemaVersion"], json!(BOARD_SCHEMA_VERSION));
        assert_eq!(after["phases"], default_phases_json());
        assert!(after.get("currentPhase").is_none(), "{after}");
        for key in [
            "timeouts",
            "children",
            "clusters",
            "agreements",
            "picks",
            "nextSteps",
        ] {
            assert_eq!(after[key], json!({}), "{key}");
        }
        let note = &after["notes"]["note-1"];
        assert_eq!(note["reactions"], json!({}));
        assert_eq!(note["children"], json!(["T."]), "existing children kept");
        assert_eq!(note["text"], "T. counted by 2s");
        // Version 1 orders were ints; they stay ints (readers accept both).
        assert_eq!(after["categories"]["strategies"]["order"], json!(1));
        let mut unchanged = before.clone();
        unchanged["schemaVersion"] = json!(BOARD_SCHEMA_VERSION);
        assert!(keeps(&after, &unchanged), "{before}\n{after}");

        let heads = doc.get_heads();
        assert!(!upgrade(&mut doc).unwrap(), "second upgrade");
        assert_eq!(doc.get_heads(), heads);
    }

    #[test]
    fn a_note_without_children_gets_an_empty_list() {
        let mut doc = v1_board(&LabInfo::default(), ActorId::random());
        doc.transact::<_, _, AutomergeError>(|tx| {
            let notes = map_at(tx, &ROOT, "notes")?.unwrap();
            let note = tx.put_object(&notes, "bare", ObjType::Map)?;
            tx.put(&note, "text", "seen")?;
            // Not a map: left alone.
            tx.put(&notes, "odd", "a scalar note")
        })
        .unwrap();
        assert!(upgrade(&mut doc).unwrap());
        let board = to_json(&doc);
        assert_eq!(
            board["notes"],
            json!({
                "bare": { "text": "seen", "children": [], "reactions": {} },
                "odd": "a scalar note",
            })
        );
    }

    #[test]
    fn documents_that_are_not_boards_are_left_alone() {
        let mut empty = Automerge::new();
        assert!(!upgrade(&mut empty).unwrap());
        assert!(empty.get_heads().is_empty());

        let mut other = Automerge::new();
        other
            .transact::<_, _, AutomergeError>(|tx| {
                tx.put(ROOT, "notes", "not a board")?;
                tx.put_object(ROOT, "items", ObjType::List)?;
                Ok(())
            })
            .unwrap();
        let heads = other.get_heads();
        assert_eq!(board_version(&other).unwrap(), None);
        assert!(!upgrade(&mut other).unwrap());
        assert_eq!(other.get_heads(), heads);

        let mut odd_version = Automerge::new();
        odd_version
            .transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "schemaVersion", "one"))
            .unwrap();
        assert!(!upgrade(&mut odd_version).unwrap());
    }

    #[test]
    fn a_board_of_a_newer_version_is_left_alone() {
        let mut doc = Automerge::new();
        doc.transact::<_, _, AutomergeError>(|tx| {
            tx.put(ROOT, "schemaVersion", BOARD_SCHEMA_VERSION + 1)?;
            tx.put_object(ROOT, "lab", ObjType::Map)?;
            Ok(())
        })
        .unwrap();
        let heads = doc.get_heads();
        assert!(!upgrade(&mut doc).unwrap());
        assert_eq!(doc.get_heads(), heads);
    }

    #[test]
    fn a_board_without_a_version_but_with_a_lab_is_upgraded() {
        let mut doc = Automerge::new();
        doc.transact::<_, _, AutomergeError>(|tx| {
            let lab = tx.put_object(ROOT, "lab", ObjType::Map)?;
            tx.put(&lab, "title", "Old")
        })
        .unwrap();
        assert_eq!(board_version(&doc).unwrap(), Some(0));
        assert!(upgrade(&mut doc).unwrap());
        let board = to_json(&doc);
        assert_eq!(board["schemaVersion"], json!(BOARD_SCHEMA_VERSION));
        assert_eq!(board["lab"], json!({ "title": "Old" }));
        assert_eq!(board["phases"], default_phases_json());
        // A version written by the JavaScript client is an int; it counts too.
        let mut js = Automerge::new();
        js.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "schemaVersion", 2_i64))
            .unwrap();
        assert_eq!(board_version(&js).unwrap(), Some(2));
    }

    #[test]
    fn reactions_to_an_upgraded_version_1_note_merge() {
        let mut server = v1_board(&info(), ActorId::random());
        add_note(&mut server, "note-1", "seen", false);
        assert!(upgrade(&mut server).unwrap());
        let mut ana = server.fork();
        let mut ben = server.fork();
        react(&mut ana, "note-1", "device-ana", 1);
        react(&mut ben, "note-1", "device-ben", 2);
        server.merge(&mut ana).unwrap();
        server.merge(&mut ben).unwrap();
        assert_eq!(
            to_json(&server)["notes"]["note-1"]["reactions"],
            json!({ "device-ana": 1, "device-ben": 2 })
        );
    }

    #[test]
    fn notes_added_concurrently_both_survive_a_merge() {
        let mut a = new_board(&LabInfo::default(), ActorId::random());
        let mut b = a.fork();
        add_note(&mut a, "note-a", "seen", true);
        add_note(&mut b, "note-b", "seen", true);
        a.merge(&mut b).unwrap();
        let (_, notes) = a.get(ROOT, "notes").unwrap().unwrap();
        assert_eq!(a.length(&notes), 2);
    }

    /// Merges every replica into every other, in index order, so all end equal.
    fn merge_all(replicas: &mut [Automerge]) {
        let mut all = replicas[0].clone();
        for replica in replicas.iter_mut().skip(1) {
            all.merge(replica).unwrap();
        }
        for replica in replicas.iter_mut() {
            replica.merge(&mut all).unwrap();
        }
    }

    /// Merges the replicas into one, in index order or in reverse.
    fn merged(replicas: &[Automerge], reverse: bool) -> Automerge {
        let mut order: Vec<&Automerge> = replicas.iter().collect();
        if reverse {
            order.reverse();
        }
        let mut all = order[0].fork();
        for replica in &order[1..] {
            all.merge(&mut (*replica).clone()).unwrap();
        }
        all
    }

    /// One edit of the phases on one replica.
    #[derive(Debug, Clone)]
    enum PhaseEdit {
        Reorder {
            phase: usize,
            order: f64,
        },
        Rename {
            phase: usize,
            at: usize,
            text: String,
        },
        Add {
            order: f64,
        },
        Start {
            phase: usize,
            at: i64,
        },
        SetCurrent {
            phase: usize,
        },
    }

    fn arb_phase_edit() -> impl Strategy<Value = PhaseEdit> {
        let phase = 0..DEFAULT_PHASES.len();
        prop_oneof![
            (phase.clone(), -10.0..10.0f64)
                .prop_map(|(phase, order)| PhaseEdit::Reorder { phase, order }),
            (phase.clone(), 0..20usize, "[a-z ]{1,6}")
                .prop_map(|(phase, at, text)| PhaseEdit::Rename { phase, at, text }),
            (-10.0..10.0f64).prop_map(|order| PhaseEdit::Add { order }),
            (phase.clone(), 0..1_000_000i64).prop_map(|(phase, at)| PhaseEdit::Start { phase, at }),
            phase.prop_map(|phase| PhaseEdit::SetCurrent { phase }),
        ]
    }

    fn apply_phase_edit(doc: &mut Automerge, edit: &PhaseEdit, added: &mut Vec<String>) {
        let phases = obj_at(doc, &["phases"]);
        doc.transact::<_, _, AutomergeError>(|tx| {
            let id_of = |phase: usize| DEFAULT_PHASES[phase].0;
            match edit {
                PhaseEdit::Reorder { phase, order } => {
                    let phase = map_at(tx, &phases, id_of(*phase))?.unwrap();
                    tx.put(&phase, "order", *order)?;
                }
                PhaseEdit::Rename { phase, at, text } => {
                    let phase = map_at(tx, &phases, id_of(*phase))?.unwrap();
                    let (_, label) = tx.get(&phase, "label")?.unwrap();
                    let at = at % (tx.length(&label) + 1);
                    tx.splice_text(&label, at, 0, text)?;
                }
                PhaseEdit::Add { order } => {
                    let id = format!("phase-{}", ActorId::random());
                    let phase = tx.put_object(&phases, &id, ObjType::Map)?;
                    put_text(tx, &phase, "label", "Extra")?;
                    tx.put(&phase, "order", *order)?;
                    added.push(id);
                }
                PhaseEdit::Start { phase, at } => {
                    let phase = map_at(tx, &phases, id_of(*phase))?.unwrap();
                    tx.put(&phase, "startedAt", *at)?;
                }
                PhaseEdit::SetCurrent { phase } => {
                    tx.put(ROOT, "currentPhase", id_of(*phase))?;
                }
            }
            Ok(())
        })
        .unwrap();
    }

    /// A version 1 note, possibly without `children`, as the upgrade test's input.
    fn arb_v1_notes() -> impl Strategy<Value = Vec<(String, bool)>> {
        prop::collection::vec(("[a-z0-9]{1,8}", any::<bool>()), 0..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn concurrent_upgrades_merge_to_one_set_of_default_phases(
            notes in arb_v1_notes(),
            replicas in 2..5usize,
            reverse: bool,
        ) {
            let mut base = v1_board(&info(), ActorId::random());
            for (id, _) in &notes {
                add_note(&mut base, id, "seen", false);
            }
            let mut replicas: Vec<Automerge> = (0..replicas).map(|_| base.fork()).collect();
            for replica in &mut replicas {
                prop_assert!(upgrade(replica).unwrap());
            }
            let mut all = merged(&replicas, reverse);
            let board = to_json(&all);
            prop_assert_eq!(&board["schemaVersion"], &json!(BOARD_SCHEMA_VERSION));
            prop_assert_eq!(&board["phases"], &default_phases_json());
            for (id, _) in &notes {
                prop_assert_eq!(&board["notes"][id]["reactions"], &json!({}));
            }
            prop_assert_eq!(to_json(&merged(&replicas, !reverse)), board);
            prop_assert!(!upgrade(&mut all).unwrap(), "merged board needs nothing more");
        }

        #[test]
        fn concurrent_reactions_to_one_note_all_survive(
            reactions in prop::collection::vec((0..3usize, 0..3usize, 0..1_000_000i64), 1..20),
            from_v1: bool,
        ) {
            // Devices react from their own replica: device `k` of replica `r` is `d{r}-{k}`.
            let mut base = if from_v1 {
                v1_board(&info(), ActorId::random())
            } else {
                new_board(&info(), ActorId::random())
            };
            add_note(&mut base, "note-1", "seen", !from_v1);
            upgrade(&mut base).unwrap();
            let mut replicas: Vec<Automerge> = (0..3).map(|_| base.fork()).collect();
            let mut expected = serde_json::Map::new();
            for (replica, device, at) in &reactions {
                let device = format!("d{replica}-{device}");
                react(&mut replicas[*replica], "note-1", &device, *at);
                expected.insert(device, json!(at));
            }
            merge_all(&mut replicas);
            for replica in &replicas {
                let board = to_json(replica);
                prop_assert_eq!(&board["notes"]["note-1"]["reactions"], &Json::Object(expected.clone()));
            }
        }

        #[test]
        fn concurrent_notes_all_survive(
            notes in prop::collection::vec(0..4usize, 1..20),
            from_v1: bool,
        ) {
            let mut base = if from_v1 {
                v1_board(&info(), ActorId::random())
            } else {
                new_board(&info(), ActorId::random())
            };
            upgrade(&mut base).unwrap();
            let mut replicas: Vec<Automerge> = (0..4).map(|_| base.fork()).collect();
            for (i, replica) in notes.iter().enumerate() {
                add_note(&mut replicas[*replica], &format!("note-{i}"), "seen", true);
            }
            merge_all(&mut replicas);
            for replica in &replicas {
                let board = to_json(replica);
                prop_assert_eq!(board["notes"].as_object().unwrap().len(), notes.len());
            }
        }

        #[test]
        fn concurrent_phase_edits_converge(
            edits in prop::collection::vec((0..3usize, arb_phase_edit()), 1..24),
            from_v1: bool,
        ) {
            let mut base = if from_v1 {
                v1_board(&info(), ActorId::random())
            } else {
                new_board(&info(), ActorId::random())
            };
            upgrade(&mut base).unwrap();
            let mut replicas: Vec<Automerge> = (0..3).map(|_| base.fork()).collect();
            let mut added = Vec::new();
            for (replica, edit) in &edits {
                apply_phase_edit(&mut replicas[*replica], edit, &mut added);
            }
            let forward = to_json(&merged(&replicas, false));
            let backward = to_json(&merged(&replicas, true));
            prop_assert_eq!(&forward, &backward);
            let phases = forward["phases"].as_object().unwrap();
            prop_assert_eq!(phases.len(), DEFAULT_PHASES.len() + added.len());
            for phase in phases.values() {
                prop_assert!(phase["label"].is_string() && phase["order"].is_f64(), "{}", phase);
            }
        }

        #[test]
        fn upgrading_is_idempotent_and_keeps_existing_values(
            notes in arb_v1_notes(),
            dropped in prop::collection::vec(0..COLLECTIONS.len(), 0..3),
        ) {
            let mut doc = v1_board(&info(), ActorId::random());
            for (id, with_children) in &notes {
                add_note(&mut doc, id, "seen", false);
                if !with_children {
                    let note = obj_at(&doc, &["notes", id]);
                    doc.transact::<_, _, AutomergeError>(|tx| tx.delete(&note, "children"))
                        .unwrap();
                }
            }
            doc.transact::<_, _, AutomergeError>(|tx| {
                for i in &dropped {
                    if tx.get(ROOT, COLLECTIONS[*i])?.is_some() {
                        tx.delete(ROOT, COLLECTIONS[*i])?;
                    }
                }
                Ok(())
            })
            .unwrap();
            let before = to_json(&doc);
            let changes = doc.get_changes(&[]).len();
            prop_assert!(upgrade(&mut doc).unwrap());
            prop_assert_eq!(doc.get_changes(&[]).len(), changes + 1);
            let after = to_json(&doc);
            let mut unchanged = before.clone();
            unchanged["schemaVersion"] = json!(BOARD_SCHEMA_VERSION);
            prop_assert!(keeps(&after, &unchanged), "{}\n{}", before, after);
            for key in COLLECTIONS {
                prop_assert!(after[key].is_object(), "{} missing", key);
            }
            let notes_kept = !dropped.iter().any(|i| COLLECTIONS[*i] == "notes");
            for (id, _) in notes.iter().filter(|_| notes_kept) {
                prop_assert!(after["notes"][id]["children"].is_array());
                prop_assert_eq!(&after["notes"][id]["reactions"], &json!({}));
            }
            let heads = doc.get_heads();
            prop_assert!(!upgrade(&mut doc).unwrap());
            prop_assert_eq!(doc.get_heads(), heads);
        }
    }
}
