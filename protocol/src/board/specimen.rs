//! A board with every field of the schema set, each to a value that is not a reader's default
//! (no empty string, no zero, every flag on), written the same way every time. The web client's
//! readers are tested against it (`web-client/src/model.test.ts` loads
//! `tests/fixtures/board-specimen.automerge`, which `specimen().save()` must equal): a field
//! added here and to [`FIELDS`](super::FIELDS) but not read in TypeScript fails that test.

use std::collections::BTreeSet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, AutomergeError, ObjId, ObjType, ReadDoc, Value, ROOT};

use super::{put_collection, put_text, BOARD_SCHEMA_VERSION, COLLECTIONS};

/// The author of the specimen's note, pick and next step (an author id as the server derives).
pub const SPECIMEN_AUTHOR: &str = "a0123456789abcdef01234567";
/// A second person: the note's reaction.
const OTHER_AUTHOR: &str = "afedcba9876543210fedcba98";
const AT: i64 = 1_764_000_000_000;
/// The note's two photos (SHA-256 of "test" and of "abc"); the second is hidden.
pub const SPECIMEN_PHOTOS: [&str; 2] = [
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
];

/// The specimen board, as one change at time 0 by a fixed actor, so its saved bytes never vary.
pub fn specimen() -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::from(b"labboard-specimen".as_slice()));
    doc.transact_with::<_, _, AutomergeError, _>(
        |_| CommitOptions::default().with_time(0),
        |tx| {
            tx.put(ROOT, "schemaVersion", BOARD_SCHEMA_VERSION)?;
            let lab = tx.put_object(ROOT, "lab", ObjType::Map)?;
            for (key, value) in [
                ("title", "Making ten"),
                ("school", "Hillside Elementary"),
                ("grade", "2"),
                ("date", "2026-11-23"),
                ("problemOfPractice", "When do we let children struggle?"),
                ("mathematicalGoal", "Grouping numbers visually"),
                ("lessonTask", "How many beads? Show how you know."),
            ] {
                put_text(tx, &lab, key, value)?;
            }
            tx.put(&lab, "pickLimit", 5_i64)?;
            for key in COLLECTIONS {
                put_collection(tx, key)?;
            }
            let at =
                |obj: &ObjId, key: &str, tx: &mut automerge::transaction::Transaction<'_>| match tx
                    .get(obj, key)?
                {
                    Some((Value::Object(_), id)) => Ok(id),
                    _ => Err(AutomergeError::InvalidObjId(key.to_owned())),
                };
            let phases = at(&ROOT, "phases", tx)?;
            for (i, (id, _, _)) in super::DEFAULT_PHASES.iter().enumerate() {
                let phase = at(&phases, id, tx)?;
                let start = AT + 3_600_000 * i64::try_from(i).unwrap_or(0);
                tx.put(&phase, "startedAt", start)?;
                tx.put(&phase, "endedAt", start + 3_000_000)?;
            }
            tx.put(ROOT, "currentPhase", "final-debrief")?;

            let timeouts = at(&ROOT, "timeouts", tx)?;
            let timeout = tx.put_object(&timeouts, "timeout-1", ObjType::Map)?;
            tx.put(&timeout, "phase", "lesson-1")?;
            tx.put(&timeout, "calledBy", "Ana")?;
            tx.put(&timeout, "calledById", SPECIMEN_AUTHOR)?;
            tx.put(&timeout, "startedAt", AT + 3_600_000 + 600_000)?;
            tx.put(&timeout, "endedAt", AT + 3_600_000 + 720_000)?;
            tx.put(&timeout, "note", "Should we prompt the ten-frame?")?;

            let children = at(&ROOT, "children", tx)?;
            let child = tx.put_object(&children, "T.", ObjType::Map)?;
            tx.put(&child, "addedBy", "Ana")?;
            tx.put(&child, "addedAt", AT + 3_600_000)?;

            let clusters = at(&ROOT, "clusters", tx)?;
            let cluster = tx.put_object(&clusters, "cluster-1", ObjType::Map)?;
            put_text(tx, &cluster, "label", "Counting on")?;
            tx.put(&cluster, "order", 1.0)?;
            tx.put(&cluster, "createdAt", AT + 7_200_000)?;

            let notes = at(&ROOT, "notes", tx)?;
            let note = tx.put_object(&notes, "note-1", ObjType::Map)?;
            tx.put(&note, "text", "T. counted by 2s, then regrouped into 10s")?;
            tx.put(&note, "category", "strategies")?;
            tx.put(&note, "authorName", "Ana")?;
            tx.put(&note, "authorId", SPECIMEN_AUTHOR)?;
            tx.put(&note, "createdAt", AT + 3_600_000 + 660_000)?;
            let kids = tx.put_object(&note, "children", ObjType::List)?;
            tx.insert(&kids, 0, "T.")?;
            let reactions = tx.put_object(&note, "reactions", ObjType::Map)?;
            tx.put(&reactions, OTHER_AUTHOR, AT + 3_600_000 + 700_000)?;
            tx.put(&note, "phase", "lesson-1")?;
            tx.put(&note, "minute", 11_i64)?;
            tx.put(&note, "timeoutId", "timeout-1")?;
            tx.put(&note, "pinned", true)?;
            tx.put(&note, "highlighted", true)?;
            tx.put(&note, "hidden", true)?;
            tx.put(&note, "clusterId", "cluster-1")?;
            tx.put(&note, "editedAt", AT + 3_600_000 + 690_000)?;
            let photos = tx.put_object(&note, "photos", ObjType::List)?;
            for (i, id) in SPECIMEN_PHOTOS.iter().enumerate() {
                tx.insert(&photos, i, *id)?;
            }
            let hidden = tx.put_object(&note, "hiddenPhotos", ObjType::Map)?;
            tx.put(&hidden, SPECIMEN_PHOTOS[1], true)?;

            let agreements = at(&ROOT, "agreements", tx)?;
            let agreement = tx.put_object(&agreements, "agreement-1", ObjType::Map)?;
            put_text(
                tx,
                &agreement,
                "text",
                "Offer ten-frames only after two minutes",
            )?;
            tx.put(&agreement, "owner", "Ben")?;
            tx.put(&agreement, "phase", "debrief-1")?;
            tx.put(&agreement, "createdAt", AT + 7_300_000)?;
            tx.put(&agreement, "order", 1.0)?;

            let picks = at(&ROOT, "picks", tx)?;
            tx.put(&picks, format!("{SPECIMEN_AUTHOR}:note-1"), AT + 14_500_000)?;

            let next_steps = at(&ROOT, "nextSteps", tx)?;
            let step = tx.put_object(&next_steps, "step-1", ObjType::Map)?;
            tx.put(
                &step,
                "text",
                "Try the two-minute wait with my grade 2 team",
            )?;
            tx.put(&step, "authorId", SPECIMEN_AUTHOR)?;
            tx.put(&step, "authorName", "Ana")?;
            tx.put(&step, "phase", "final-debrief")?;
            tx.put(&step, "createdAt", AT + 14_600_000)?;
            tx.put(&step, "editedAt", AT + 14_700_000)?;
            Ok(())
        },
    )
    .map_err(|failure| failure.error)
    .expect("building the specimen in memory cannot fail");
    doc
}

/// Every path a document holds, written as [`FIELDS`](super::FIELDS) writes them: the keys of
/// collections (and of a note's `reactions` and `hiddenPhotos`) as `*`, list elements as `[]`.
pub fn paths(doc: &impl ReadDoc) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(doc, &ROOT, "", false, &mut out);
    out
}

fn walk(
    doc: &impl ReadDoc,
    obj: &ObjId,
    prefix: &str,
    collection: bool,
    out: &mut BTreeSet<String>,
) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    let visit = |name: String, value: Value<'_>, id: ObjId, out: &mut BTreeSet<String>| {
        if let Value::Object(ObjType::Map | ObjType::List) = value {
            let is_collection = (prefix.is_empty() && COLLECTIONS.contains(&name.as_str()))
                || (name.starts_with("notes.*.")
                    && (name.ends_with(".reactions") || name.ends_with(".hiddenPhotos")));
            walk(doc, &id, &name, is_collection, out);
        }
        out.insert(name);
    };
    match doc.object_type(obj) {
        Ok(ObjType::Map | ObjType::Table) => {
            for key in doc.keys(obj) {
                if let Ok(Some((value, id))) = doc.get(obj, &key) {
                    let name = join(if collection { "*" } else { &key });
                    visit(name, value, id, out);
                }
            }
        }
        Ok(ObjType::List) => {
            for i in 0..doc.length(obj) {
                if let Ok(Some((value, id))) = doc.get(obj, i) {
                    visit(join("[]"), value, id, out);
                }
            }
        }
        Ok(ObjType::Text) | Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::{board_version, upgrade, FIELDS};

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/board-specimen.automerge"
    );

    #[test]
    fn the_specimen_holds_every_field_and_nothing_else() {
        let doc = specimen();
        let found = paths(&doc);
        let fields: BTreeSet<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
        let missing: Vec<_> = fields.difference(&found).collect();
        let unknown: Vec<_> = found.difference(&fields).collect();
        assert!(missing.is_empty(), "FIELDS the specimen lacks: {missing:?}");
        assert!(
            unknown.is_empty(),
            "specimen paths not in FIELDS: {unknown:?}"
        );
        assert_eq!(FIELDS.len(), fields.len(), "FIELDS has duplicates");
    }

    #[test]
    fn the_specimen_is_an_up_to_date_board() {
        let mut doc = specimen();
        assert_eq!(board_version(&doc).unwrap(), Some(BOARD_SCHEMA_VERSION));
        assert!(!upgrade(&mut doc).unwrap(), "nothing to upgrade");
    }

    #[test]
    fn the_specimen_photos_are_photo_ids() {
        use crate::board::{is_photo_id, MAX_NOTE_PHOTOS};
        assert!(SPECIMEN_PHOTOS.iter().all(|id| is_photo_id(id)));
        assert!(SPECIMEN_PHOTOS.len() <= MAX_NOTE_PHOTOS);
        assert!(!is_photo_id(&SPECIMEN_PHOTOS[0].to_uppercase()));
        assert!(!is_photo_id(&SPECIMEN_PHOTOS[0][1..]));
        assert!(!is_photo_id(&format!("{}0", SPECIMEN_PHOTOS[0])));
        assert!(!is_photo_id(&SPECIMEN_PHOTOS[0].replace('a', "g")));
    }

    /// The fixture the TypeScript test reads is this specimen. Set LABBOARD_WRITE_FIXTURES=1 to
    /// write it after changing the schema.
    #[test]
    fn the_fixture_is_the_specimen() {
        let bytes = specimen().save();
        assert_eq!(specimen().save(), bytes, "the specimen is deterministic");
        if std::env::var_os("LABBOARD_WRITE_FIXTURES").is_some() {
            std::fs::write(FIXTURE, &bytes).expect("write the fixture");
        }
        let stored = std::fs::read(FIXTURE).expect("read tests/fixtures/board-specimen.automerge");
        assert!(
            stored == bytes,
            "tests/fixtures/board-specimen.automerge is not the specimen: run \
             `LABBOARD_WRITE_FIXTURES=1 cargo test -p labboard-protocol the_fixture_is_the_specimen`"
        );
    }
}
