//! The lab board: the shape of the one Automerge document each lab has.
//!
//! The server creates the document when a lab is created ([`new_board`]); phones and the
//! projector then edit it through automerge-repo. Shapes are chosen to merge well: collections
//! are maps keyed by a random id, never lists, so two phones adding notes at once both keep
//! theirs, and a field two people may edit at once is collaborative text.
//!
//! # Schema, version 1
//!
//! ```text
//! schemaVersion: uint                  1 for this layout
//! lab: {                               what the facilitator entered at creation
//!   title, school, grade,              text
//!   date,                              text, "YYYY-MM-DD" or ""
//!   problemOfPractice,                 text
//!   mathematicalGoal,                  text
//!   lessonTask                         text
//! }
//! categories: {                        map keyed by category id
//!   <id>: { label: text, color: text "#rrggbb", order: int }
//! }
//! notes: {                             map keyed by note id (written by clients)
//!   <id>: {
//!     text: str,                       the observation; only its author edits it
//!     category: str,                   a key of `categories`
//!     authorName: str,                 display name at the time of writing
//!     authorId: str,                   stable id of the author's device
//!     createdAt: int,                  ms since the epoch, from the author's clock
//!     children: [str]                  aliases or initials, never full names
//!   }
//! }
//! ```
//!
//! "text" is an Automerge text object (what the JavaScript client reads as a plain string and
//! writes for a string); "str" is a scalar string, cheaper for values only their author sets.
//! Readers must treat every field as optional and ignore keys they do not know, so later
//! versions can add fields; a version that changes the meaning of a field bumps
//! `schemaVersion`.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, AutomergeError, ObjType, ROOT};

/// The schema version [`new_board`] writes.
pub const BOARD_SCHEMA_VERSION: u64 = 1;

/// The categories a new lab starts with: (id, label, colour).
pub const DEFAULT_CATEGORIES: [(&str, &str, &str); 5] = [
    ("student-thinking", "Student thinking", "#2563eb"),
    ("strategies", "Strategies", "#16a34a"),
    ("teacher-moves", "Teacher moves", "#9333ea"),
    ("wonderings", "Wonderings / questions", "#ea580c"),
    ("next-steps", "Next steps", "#0f766e"),
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
    .expect("building a fresh document in memory cannot fail");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ReadDoc;

    fn text(doc: &Automerge, obj: &automerge::ObjId, key: &str) -> String {
        let (_, id) = doc.get(obj, key).unwrap().unwrap();
        doc.text(&id).unwrap()
    }

    #[test]
    fn a_new_board_has_the_documented_shape() {
        let info = LabInfo {
            title: "Making ten".into(),
            school: "Hillside".into(),
            grade: "2".into(),
            date: "2026-11-23".into(),
        };
        let doc = new_board(&info, ActorId::random());
        assert_eq!(doc.get_heads().len(), 1, "one change");
        let (version, _) = doc.get(ROOT, "schemaVersion").unwrap().unwrap();
        assert_eq!(version.as_u64(), Some(BOARD_SCHEMA_VERSION));
        let (_, lab) = doc.get(ROOT, "lab").unwrap().unwrap();
        assert_eq!(text(&doc, &lab, "title"), "Making ten");
        assert_eq!(text(&doc, &lab, "date"), "2026-11-23");
        assert_eq!(text(&doc, &lab, "lessonTask"), "");
        let (_, categories) = doc.get(ROOT, "categories").unwrap().unwrap();
        assert_eq!(doc.length(&categories), DEFAULT_CATEGORIES.len());
        let (_, thinking) = doc.get(&categories, "student-thinking").unwrap().unwrap();
        assert_eq!(text(&doc, &thinking, "label"), "Student thinking");
        let (_, notes) = doc.get(ROOT, "notes").unwrap().unwrap();
        assert_eq!(doc.length(&notes), 0);
    }

    #[test]
    fn notes_added_concurrently_both_survive_a_merge() {
        let mut a = new_board(&LabInfo::default(), ActorId::random());
        let mut b = a.fork();
        for (doc, id) in [(&mut a, "note-a"), (&mut b, "note-b")] {
            doc.transact::<_, _, AutomergeError>(|tx| {
                let (_, notes) = tx.get(ROOT, "notes")?.unwrap();
                let note = tx.put_object(&notes, id, ObjType::Map)?;
                tx.put(&note, "text", "seen")?;
                Ok(())
            })
            .unwrap();
        }
        a.merge(&mut b).unwrap();
        let (_, notes) = a.get(ROOT, "notes").unwrap().unwrap();
        assert_eq!(a.length(&notes), 2);
    }
}
